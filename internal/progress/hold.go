package progress

import "sync"

// Holder is a Renderer that can leave its terminal to another program for
// a while (a debug shell): Hold writes what is due and then nothing until
// Release, which starts again below whatever was written meanwhile.
type Holder interface {
	Renderer
	Hold()
	Release()
}

// Holdable returns r as a Holder. While it is held, a TTY records events
// as usual and only stops drawing; other renderers get the events, in
// order, at Release. Close releases it first.
func Holdable(r Renderer) Holder {
	return &holder{r: r}
}

type holder struct {
	r       Renderer
	mu      sync.Mutex
	holding bool
	queue   []Event
}

func (h *holder) Emit(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, tty := h.r.(*TTY); h.holding && !tty {
		h.queue = append(h.queue, e)
		return
	}
	h.r.Emit(e)
}

func (h *holder) Hold() {
	h.mu.Lock()
	h.holding = true
	h.mu.Unlock()
	if t, ok := h.r.(*TTY); ok {
		t.hold()
	}
}

func (h *holder) Release() {
	if t, ok := h.r.(*TTY); ok {
		t.release()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.queue {
		h.r.Emit(e)
	}
	h.queue, h.holding = nil, false
}

func (h *holder) Close() error {
	h.Release()
	return h.r.Close()
}
