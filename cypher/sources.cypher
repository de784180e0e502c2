// Sources: the unit of ingestion. `state` is 'writing' while a source's
// episodes are being written and 'complete' once all of them are; a source
// left in 'writing' by a crash is cleared and rewritten on the next run.

// name: source_get
MATCH (s:Source {group_id: $group_id, name: $name})
RETURN s.uuid AS uuid, s.content_hash AS content_hash, s.state AS state, s.turn_count AS turn_count

// name: source_begin
MERGE (s:Source {uuid: $uuid})
SET s.group_id = $group_id, s.name = $name, s.kind = $kind, s.uri = $uri,
    s.metadata = $metadata, s.state = 'writing', s.content_hash = $content_hash

// name: source_turn_count_set
// Dialogue sources: how many turns are stored (a grown chat log appends after them).
MATCH (s:Source {uuid: $uuid, group_id: $group_id})
SET s.turn_count = $turn_count

// name: source_complete
MATCH (s:Source {uuid: $uuid, group_id: $group_id})
SET s.state = 'complete'

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

// name: entities_delete_orphans
MATCH (n:Entity {group_id: $group_id})
WHERE NOT (n)<-[:MENTIONS]-() AND NOT (n)-[:FACT]-()
DETACH DELETE n
RETURN count(*) AS deleted

// name: source_delete
MATCH (s:Source {uuid: $uuid, group_id: $group_id})
DETACH DELETE s
