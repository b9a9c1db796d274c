package journal

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// After returns up to limit operations with an id above id, oldest first,
// without their progress: what a follower of the journal (the fleet link)
// has not seen yet. Pruned operations are simply absent.
func (s *Store) After(id uint64, limit int) ([]Operation, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	var out []Operation
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketOps).Cursor()
		for k, v := c.Seek(key(id + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			op, err := decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, *op)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list operations after %d: %w", id, err)
	}
	return out, nil
}
