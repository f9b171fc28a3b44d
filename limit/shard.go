package limit

// maxShards is the number of shards of the keyed limiters, at most: enough that two
// requests seldom wait for one lock, few enough that their fixed cost stays small.
const maxShards = 64

// shardCaps splits maxKeys over the shards: a power of two of them, at most maxShards
// and at most maxKeys, whose capacities add up to maxKeys exactly.
func shardCaps(maxKeys int) []int {
	n := 1
	for n*2 <= maxShards && n*2 <= maxKeys {
		n *= 2
	}
	caps := make([]int, n)
	for i := range caps {
		caps[i] = maxKeys / n
		if i < maxKeys%n {
			caps[i]++
		}
	}
	return caps
}

// shardOf picks a shard from a key's hash; the bits it uses are not those the maps
// inside a shard depend on most.
func shardOf(h uint64, n int) int { return int((h >> 58) & uint64(n-1)) }
