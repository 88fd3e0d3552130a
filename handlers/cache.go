package handlers

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// fragmentCacheMaxEntries bounds a fragment cache; past it the cache starts
// afresh, so a flood of distinct searches cannot grow memory.
const fragmentCacheMaxEntries = 1024

// fragmentCache keeps rendered HTML that is the same for every visitor (the
// catalog listings; or data as small and as shared, the categories) for a short time. The catalog page is the busiest page
// and its queries and rendering dominated its cost; a listing may be a
// second or two stale, while cart changes always check stock in the
// database. Concurrent misses for one key render once (singleflight).
type fragmentCache[V any] struct {
	ttl   time.Duration
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]fragment[V]
}

type fragment[V any] struct {
	html    V
	expires time.Time
}

func newFragmentCache[V any](ttl time.Duration) *fragmentCache[V] {
	return &fragmentCache[V]{ttl: ttl, entries: map[string]fragment[V]{}}
}

// get returns the fragment for key, calling render on a miss. render gets a
// context that is not cancelled with the request, as other requests wait
// for its result too.
func (fc *fragmentCache[V]) get(ctx context.Context, key string, render func(ctx context.Context) (V, error)) (V, error) {
	fc.mu.Lock()
	f, ok := fc.entries[key]
	fc.mu.Unlock()
	if ok && time.Now().Before(f.expires) {
		return f.html, nil
	}
	v, err, _ := fc.group.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		html, err := render(ctx)
		if err != nil {
			return html, err
		}
		fc.mu.Lock()
		if len(fc.entries) >= fragmentCacheMaxEntries {
			fc.entries = map[string]fragment[V]{}
		}
		fc.entries[key] = fragment[V]{html: html, expires: time.Now().Add(fc.ttl)}
		fc.mu.Unlock()
		return html, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}
