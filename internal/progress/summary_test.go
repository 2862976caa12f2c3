package progress

import (
	"testing"
	"time"
)

func TestSummary(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []stepEnd
		want  string
	}{
		{name: "none", want: ""},
		{name: "one cached", steps: []stepEnd{{id: 1, name: "[1/1] FROM alpine", status: Cached}},
			want: "strata: 1 step: 0 run, 1 cached"},
		{name: "slowest three", steps: []stepEnd{
			{id: 1, name: "[1/5] FROM alpine", status: Cached},
			{id: 2, name: "[2/5] COPY . .", status: Done, took: 300 * ms},
			{id: 3, name: "[3/5] RUN a", status: Done, took: 100 * ms},
			{id: 4, name: "[build 4/5] RUN make", status: Done, took: 1200 * ms},
			{id: 5, name: "[5/5] RUN b", status: Done, took: 100 * ms},
		}, want: "strata: 5 steps: 4 run, 1 cached; slowest: 1.2s #4 RUN make, 0.3s #2 COPY . ., 0.1s #3 RUN a"},
		{name: "failed and unfinished", steps: []stepEnd{
			{id: 1, name: "[1/3] RUN false", status: Error, took: 50 * ms},
			{id: 2, name: "[2/3] RUN sleep 9", status: Started, took: 2 * time.Second},
			{id: 3, name: "pull alpine", status: Done, took: 20 * ms},
		}, want: "strata: 3 steps: 1 run, 0 cached, 1 failed, 1 unfinished; slowest: 0.1s #1 RUN false"},
		{name: "only quick steps", steps: []stepEnd{{id: 1, name: "[1/1] COPY . .", status: Done, took: 49 * ms}},
			want: "strata: 1 step: 1 run, 0 cached"},
		{name: "long name", steps: []stepEnd{
			{id: 1, name: "[1/1] RUN apt-get update && apt-get install -y build-essential", status: Done, took: 2 * time.Second},
		}, want: "strata: 1 step: 1 run, 0 cached; slowest: 2.0s #1 RUN apt-get update && apt-get install..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summary(tc.steps); got != tc.want {
				t.Errorf("summary() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
