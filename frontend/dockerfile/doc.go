// Package dockerfile converts a Dockerfile into strata's build graph and an
// image-config template, the way `docker buildx build` does.
//
// Vocabulary:
//
//   - A stage is one FROM block. Its base is scratch, an image (a SourceOp
//     resolved through the ImageResolver to a manifest digest) or an earlier
//     stage named or numbered in FROM.
//   - The target is the stage being built (Options.Target, or the last one).
//     Only stages the target reaches through FROM, COPY --from and
//     RUN --mount from= are converted; the others leave no vertex behind.
//   - The context is the local build directory, one shared SourceOp named
//     "context" that every COPY, ADD and bind mount without --from reads.
//   - The build env of a stage is its image's Env plus the ARGs it declared:
//     RUN sees both, the image config keeps only ENV.
//   - A step is one instruction that produces a vertex (FROM image, RUN,
//     COPY, ADD, WORKDIR); it is named "[stage i/n] INSTRUCTION ..." as
//     BuildKit prints it and carries StepID "<stage index>/<instruction index>".
//     Every other instruction only edits the image config and adds an
//     empty_layer history entry.
//
// A conversion walks one path: the Dockerfile is parsed (BuildKit's parser
// and instructions packages), global ARGs are evaluated, stages are linked
// into a dependency graph, base images of the reachable stages are resolved,
// and each reachable stage is dispatched instruction by instruction, every
// step wrapping the stage's current root vertex in a new one. The target's
// last root and its config template form the Result; lint warnings are
// collected along the way. Convert never touches disk or network: the only
// effect is the injected ImageResolver.
package dockerfile
