// Sources: the unit of ingestion. `state` is 'writing' while a source's
// episodes are being written and 'complete' once all of them are; a source
// left in 'writing' by a crash is cleared and rewritten on the next run.

// name: source_get
MATCH (s:Source {group_id: $group_id, name: $name})
RETURN s.uuid AS uuid, s.content_hash AS content_hash, s.state AS state, s.turn_count AS turn_count,
       s.written AS written

// A long document is written in batches: after each batch but its last, `written`
// is how many of its passages (positions 0 .. written-1) are fully stored, so a run
// that re-ingests it after a crash resumes there; 0 again before it is complete.
// name: sources_written_set
UNWIND $rows AS r
MATCH (s:Source {uuid: r.uuid, group_id: $group_id})
SET s.written = r.written

// The episodes a batch that did not finish may have written: from $position on.
// name: source_episodes_from
MATCH (s:Source {uuid: $uuid, group_id: $group_id})-[:HAS_EPISODE]->(e:Episode)
WHERE e.position >= $position
RETURN e.uuid AS uuid

// name: source_turn_count_set
// Dialogue sources: how many turns are stored (a grown chat log appends after them).
MATCH (s:Source {uuid: $uuid, group_id: $group_id})
SET s.turn_count = $turn_count

// name: sources_list
MATCH (s:Source {group_id: $group_id})
OPTIONAL MATCH (s)-[:HAS_EPISODE]->(e:Episode)
RETURN s.uuid AS uuid, s.name AS name, s.kind AS kind, s.state AS state, count(e) AS episodes
ORDER BY name

// Forgetting a source's episodes: facts lose those episodes as support and
// are deleted once nothing supports them; entities nothing mentions or
// relates any more go too. Run in this order.

// name: facts_unsupport
MATCH (s:Source {uuid: $uuid, group_id: $group_id})-[:HAS_EPISODE]->(e:Episode)
WITH collect(e.uuid) AS gone
MATCH (:Entity {group_id: $group_id})-[f:FACT]->(:Entity)
WHERE any(x IN f.episodes WHERE x IN gone)
SET f.episodes = [x IN f.episodes WHERE NOT x IN gone]

// name: facts_delete_unsupported
MATCH (:Entity {group_id: $group_id})-[f:FACT]->(:Entity)
WHERE size(f.episodes) = 0
DELETE f
RETURN count(*) AS deleted

// name: source_episodes_delete
MATCH (s:Source {uuid: $uuid, group_id: $group_id})-[:HAS_EPISODE]->(e:Episode)
DETACH DELETE e
RETURN count(*) AS deleted

// Orphan entities are only deleted while no other live writer has a source
// in 'writing' ($owner: the caller; $dead: owners known to be dead, '' for
// sources written before owners existed): a concurrent writer's entities are
// orphans for the moment between its entity and mention writes. The check
// and the delete are one query, so they are atomic on FalkorDB.
// name: entities_delete_orphans
OPTIONAL MATCH (w:Source {group_id: $group_id, state: 'writing'})
WHERE coalesce(w.owner, '') <> $owner AND NOT coalesce(w.owner, '') IN $dead
WITH count(w) AS busy
MATCH (n:Entity {group_id: $group_id})
WHERE busy = 0 AND NOT (n)<-[:MENTIONS]-() AND NOT (n)-[:FACT]-()
DETACH DELETE n
RETURN count(*) AS deleted

// The same, among the entities $uuids only (what one ingestion run created): the
// run's final sweep costs the run's size, not the store's.
// name: entities_delete_orphans_among
OPTIONAL MATCH (w:Source {group_id: $group_id, state: 'writing'})
WHERE coalesce(w.owner, '') <> $owner AND NOT coalesce(w.owner, '') IN $dead
WITH count(w) AS busy
UNWIND $uuids AS uuid
MATCH (n:Entity {uuid: uuid})
WHERE busy = 0 AND n.group_id = $group_id AND NOT (n)<-[:MENTIONS]-() AND NOT (n)-[:FACT]-()
DETACH DELETE n
RETURN count(*) AS deleted

// name: source_delete
MATCH (s:Source {uuid: $uuid, group_id: $group_id})
DETACH DELETE s

// -- ownership: what makes concurrent and crashed writers safe -----------------
// A writer claims a source before writing it: the claim succeeds unless the
// source is already complete with the same content (done) or another live
// writer holds it (busy). `owner` is host|pid|token; `lease_at` (epoch ms) is
// renewed as batches finish, so a writer on another host can be judged dead
// once its lease is old. One query: atomic, so two writers cannot both claim.

// (SET touched_at first: on Neo4j that takes the node's write lock, so two
// transactions claiming one source run one after the other.)
// One row per source ($rows: uuid, name, kind, uri, content_hash, metadata), so a
// run claims its documents in a few round trips; each row is claimed as above.
// name: sources_claim
UNWIND $rows AS r
MERGE (s:Source {uuid: r.uuid})
ON CREATE SET s.group_id = $group_id, s.name = r.name, s.state = 'new', s.content_hash = '', s.owner = ''
SET s.touched_at = $now
WITH r, s, s.state AS was,
     (s.state = 'complete' AND s.content_hash = r.content_hash) AS done,
     (s.state = 'writing' AND coalesce(s.owner, '') <> $owner AND NOT coalesce(s.owner, '') IN $dead) AS busy
WITH r, s, was, done, busy, (NOT done AND NOT busy) AS mine
SET s.state = CASE WHEN mine THEN 'writing' ELSE s.state END,
    s.owner = CASE WHEN mine THEN $owner ELSE s.owner END,
    s.lease_at = CASE WHEN mine THEN $now ELSE s.lease_at END,
    s.group_id = CASE WHEN mine THEN $group_id ELSE s.group_id END,
    s.name = CASE WHEN mine THEN r.name ELSE s.name END,
    s.kind = CASE WHEN mine THEN r.kind ELSE s.kind END,
    s.uri = CASE WHEN mine THEN r.uri ELSE s.uri END,
    s.metadata = CASE WHEN mine THEN r.metadata ELSE s.metadata END,
    s.content_hash = CASE WHEN mine THEN r.content_hash ELSE s.content_hash END
RETURN r.uuid AS uuid, mine, done, busy, was

// name: sources_writing
MATCH (s:Source {group_id: $group_id, state: 'writing'})
RETURN s.uuid AS uuid, coalesce(s.owner, '') AS owner, s.lease_at AS lease_at,
       s.content_hash AS content_hash, coalesce(s.written, 0) AS written

// A dead writer's source is taken over (only if it still has that owner)
// before it is cleared, so two sweepers, or a sweeper and a new claimant,
// never clear a source someone live is writing.
// name: source_takeover
MATCH (s:Source {uuid: $uuid, group_id: $group_id, state: 'writing'})
WHERE coalesce(s.owner, '') = $dead_owner
SET s.owner = $owner, s.lease_at = $now
RETURN s.uuid AS uuid

// name: sources_complete_owned
UNWIND $uuids AS uuid
MATCH (s:Source {uuid: uuid, group_id: $group_id, owner: $owner})
SET s.state = 'complete', s.lease_at = $now
RETURN s.uuid AS uuid

// name: sources_renew
MATCH (s:Source {group_id: $group_id, state: 'writing', owner: $owner})
SET s.lease_at = $now

// name: source_delete_owned
MATCH (s:Source {uuid: $uuid, group_id: $group_id, owner: $owner})
DETACH DELETE s
