// An ingestion that would write nothing (graphmem/ingest/unchanged.py): answered
// from the stored sources before any model loads.

// How many of the sources $rows (uuid, content_hash) are stored complete with that
// same content (what the claim query calls `done`); one count per row.
// name: sources_unchanged
UNWIND $rows AS r
MATCH (s:Source {uuid: r.uuid, group_id: $group_id})
WHERE s.state = 'complete' AND s.content_hash = r.content_hash
RETURN count(s) AS unchanged
