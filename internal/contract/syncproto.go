package contract

// The sync protocol's names (docs/sync-protocol.md): the registrar's GET /v1/routes
// answers with them (registrar/server/routes.go) and the filter's poller asks and
// parses with them (filter/polling). A change here is a protocol change.

// Query parameters of a poll.
const (
	QueryProtocol = "v"        // protocol version: "2", or absent for version 1
	QueryAfter    = "after"    // the revision the proxy has applied
	QueryLineage  = "lineage"  // the lineage of that revision
	QueryWait     = "wait"     // seconds the registrar may hold the poll
	QuerySnapshot = "snapshot" // the revision of the full table being paged
	QueryStart    = "start"    // the first name of the page asked for
	QueryProxy    = "proxy"    // the proxy's id
	QueryCluster  = "cluster"  // the proxy's cluster
	QueryVersion  = "version"  // the filter's build version
)

// ProtocolV2 is QueryProtocol's value for version 2 (deltas and pages).
const ProtocolV2 = "2"

// ProtocolV3 is QueryProtocol's value for version 3: version 2 whose route values are
// target-set strings (targetset.go).
const ProtocolV3 = "3"

// Fields of a 200 answer's JSON object.
const (
	AnswerKind     = "kind"     // KindFull or KindDelta; absent in a version-1 answer
	AnswerLineage  = "lineage"  // the history the revisions belong to
	AnswerFrom     = "from"     // delta: the revision it starts from
	AnswerRevision = "revision" // the revision the answer brings the proxy to
	AnswerUpserts  = "upserts"  // delta: name → target, added or changed
	AnswerRemovals = "removals" // delta: names removed
	AnswerRoutes   = "routes"   // full: the page's name → target
	AnswerNext     = "next"     // full: the first name of the next page; absent on the last
)

// Values of AnswerKind.
const (
	KindFull  = "full"
	KindDelta = "delta"
)

// The error answer's fields (410 and the other refusals) and the 410 code.
const (
	AnswerError   = "error"
	AnswerMessage = "message"
	SnapshotGone  = "snapshot_gone" // 410: the paged revision is no longer held; start over
)
