// Reads of the graph explorer (/ui, graphmem/ui/explore.py). Every one is read-only and
// anchored on $group_id. Times are epoch milliseconds; a fact "holds at $as_of" when it had
// started (valid_at unknown or <= $as_of) and had not ended (invalid_at unknown or > $as_of).
// $as_of null with $history false: the facts true now; $history true: every fact.

// name: ui_entity_lookup
// Entities whose name (or normalised name) contains the text, the most mentioned first.
MATCH (n:Entity {group_id: $group_id})
WHERE n.name_key CONTAINS $key OR toLower(n.name) CONTAINS $text
OPTIONAL MATCH (n)<-[m:MENTIONS]-()
WITH n, count(m) AS mentions
RETURN n.uuid AS uuid, n.name AS name, n.type AS type, mentions
ORDER BY mentions DESC, name
LIMIT $limit

// name: ui_neighbour_count
// How many distinct entities share a FACT with the entity (in either direction).
MATCH (a:Entity {uuid: $uuid, group_id: $group_id})-[f:FACT]-(b:Entity)
WHERE b.uuid <> $uuid
  AND ($history OR ($as_of IS NULL AND f.invalid_at IS NULL)
       OR ($as_of IS NOT NULL AND (f.valid_at IS NULL OR f.valid_at <= $as_of)
           AND (f.invalid_at IS NULL OR f.invalid_at > $as_of)))
RETURN count(DISTINCT b) AS total

// name: ui_neighbours
// One page of those neighbours, the most connected first (then by name), one row per fact
// between the entity and a neighbour of the page.
MATCH (a:Entity {uuid: $uuid, group_id: $group_id})-[f:FACT]-(b:Entity)
WHERE b.uuid <> $uuid
  AND ($history OR ($as_of IS NULL AND f.invalid_at IS NULL)
       OR ($as_of IS NOT NULL AND (f.valid_at IS NULL OR f.valid_at <= $as_of)
           AND (f.invalid_at IS NULL OR f.invalid_at > $as_of)))
WITH b, collect(f) AS facts
WITH b, facts, size(facts) AS weight
ORDER BY weight DESC, b.name, b.uuid
SKIP $skip LIMIT $limit
UNWIND facts AS f
RETURN b.uuid AS uuid, b.name AS name, b.type AS type, weight,
       f.uuid AS fact, startNode(f).uuid AS source, endNode(f).uuid AS target,
       f.predicate AS predicate, f.text AS text, f.valid_at AS valid_at, f.invalid_at AS invalid_at

// name: ui_entity_passages
// One page of the passages that mention the entity (the earliest first), and how many there are.
MATCH (e:Episode {group_id: $group_id})-[:MENTIONS]->(:Entity {uuid: $uuid, group_id: $group_id})
WITH e ORDER BY e.occurred_at, e.source_id, e.position, e.uuid
WITH collect(e) AS mentioning
UNWIND mentioning[$skip..($skip + $limit)] AS e
RETURN e.uuid AS uuid, e.title AS title, e.content AS content, e.occurred_at AS occurred_at,
       e.speaker AS speaker, size(mentioning) AS total
