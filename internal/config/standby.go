package config

// Standby is a backend's standby cluster for reads (milvus-lb.io/standby): a Milvus kept
// in sync by Milvus CDC that serves reads and refuses writes. Reads whose consistency
// level accepts stale data (Bounded, Eventually), and whose guarantee_timestamp asks for
// nothing newer than Staleness ago, go to it, Weight percent of them; every other call
// goes to the primary. When the standby has no endpoint to take a call its reads go to the
// primary; when the primary has none, its reads of any level go to the standby (writes
// fail naming the primary).
type Standby struct {
	Backend string `json:"backend"` // Backend.Key of the standby
	Weight  int    `json:"weight"`  // 1-100: the percent of stale-tolerant reads it takes
	// Staleness is how far behind the primary the operator accepts the standby to be: a
	// read whose guarantee_timestamp is more recent than that stays on the primary.
	Staleness Duration `json:"staleness"`
}

// Mirror sends copies of a backend's calls to another backend (milvus-lb.io/mirror), whose
// replies are read and dropped: Percent of the calls of the Operations classes (read,
// write, ddl, admin).
type Mirror struct {
	Backend    string   `json:"backend"` // Backend.Key of the mirror
	Percent    int      `json:"percent"` // 1-100
	Operations []string `json:"operations"`
}
