package localapi

import (
	"testing"
)

func TestBrokerReplayAndDrop(t *testing.T) {
	cases := []struct {
		name      string
		keep      int
		published int
		after     uint64
		replay    bool
		want      []uint64
	}{
		{"new only", 10, 3, 0, false, nil},
		{"replay all held", 10, 3, 0, true, []uint64{1, 2, 3}},
		{"replay after id", 10, 5, 3, true, []uint64{4, 5}},
		{"replay bounded by keep", 2, 5, 0, true, []uint64{4, 5}},
		{"nothing newer", 10, 3, 3, true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBroker(c.keep)
			for i := 0; i < c.published; i++ {
				b.Publish("test", i)
			}
			ch, _, cancel := b.Subscribe(c.after, c.replay)
			defer cancel()
			var got []uint64
			for len(ch) > 0 {
				got = append(got, (<-ch).ID)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestBrokerDropsSlowSubscriber(t *testing.T) {
	b := NewBroker(10)
	ch, dropped, cancel := b.Subscribe(0, false)
	defer cancel()
	for i := 0; i < cap(ch)+1; i++ {
		b.Publish("flood", i)
	}
	select {
	case <-dropped:
	default:
		t.Fatal("a subscriber that fell behind was not dropped")
	}
	// Publishing goes on without blocking on the dropped subscriber.
	b.Publish("after", nil)
}
