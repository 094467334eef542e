// The working spec's eviction check vectors (shared/specs/kv-evict.md): nine tokens of d = 2,
// keys K and values V, used by the reference's own test and by the cache's.
export const K = [
  [0, 2],
  [-1, -2],
  [2, -1],
  [0, -2],
  [-1, 0],
  [2, 2],
  [1, 2],
  [-2, -1],
  [1, -2],
];
export const V = [
  [-2, -1],
  [1, -1],
  [-2, -2],
  [2, -1],
  [2, -1],
  [1, 2],
  [-1, 0],
  [2, 1],
  [-1, -2],
];
