package disk

import "container/list"

// policy chooses which object leaves when the store is over its byte bound. The store
// calls it with its index lock held, so an implementation needs no locking of its own
// and must not block. Objects are named by their slot (the hash of their key): a slot
// holds at most one object, and a replaced object is removed before its successor is
// added.
type policy interface {
	// add records a newly committed object of size bytes (body and head files).
	add(slot uint64, size int64)
	// hit records a lookup that found the object.
	hit(slot uint64)
	// remove forgets the object: purged, replaced or evicted.
	remove(slot uint64)
	// victim names the object to evict next without forgetting it, or false when the
	// policy holds none.
	victim() (uint64, bool)
}

// lru evicts the least recently used object: a hit moves an object to the front, the
// victim is the one at the back.
type lru struct {
	order list.List // of uint64 slots, most recently used first
	nodes map[uint64]*list.Element
}

func newLRU() *lru {
	return &lru{nodes: make(map[uint64]*list.Element)}
}

func (p *lru) add(slot uint64, _ int64) {
	if el, ok := p.nodes[slot]; ok {
		p.order.MoveToFront(el)
		return
	}
	p.nodes[slot] = p.order.PushFront(slot)
}

func (p *lru) hit(slot uint64) {
	if el, ok := p.nodes[slot]; ok {
		p.order.MoveToFront(el)
	}
}

func (p *lru) remove(slot uint64) {
	if el, ok := p.nodes[slot]; ok {
		p.order.Remove(el)
		delete(p.nodes, slot)
	}
}

func (p *lru) victim() (uint64, bool) {
	el := p.order.Back()
	if el == nil {
		return 0, false
	}
	return el.Value.(uint64), true
}
