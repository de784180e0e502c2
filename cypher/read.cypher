// Reads used by retrieval, the CLI and the API.

// name: episodes_get
UNWIND $uuids AS id
MATCH (e:Episode {uuid: id, group_id: $group_id})
OPTIONAL MATCH (s:Source)-[:HAS_EPISODE]->(e)
RETURN e.uuid AS uuid, e.content AS content, e.title AS title, e.source AS source,
       e.source_id AS source_id, e.position AS position, e.speaker AS speaker, e.turn_id AS turn_id,
       e.occurred_at AS occurred_at, e.ingested_at AS ingested_at, s.name AS source_name

// name: entities_all
MATCH (n:Entity {group_id: $group_id})
RETURN n.uuid AS uuid, n.name AS name, n.name_key AS name_key, n.aliases AS aliases, n.type AS type

// name: stats
OPTIONAL MATCH (s:Source {group_id: $group_id}) WITH count(s) AS sources
OPTIONAL MATCH (e:Episode {group_id: $group_id}) WITH sources, count(e) AS episodes
OPTIONAL MATCH (n:Entity {group_id: $group_id}) WITH sources, episodes, count(n) AS entities
OPTIONAL MATCH (:Entity {group_id: $group_id})-[f:FACT]->() WITH sources, episodes, entities, count(f) AS facts
OPTIONAL MATCH (:Episode {group_id: $group_id})-[m:MENTIONS]->() WITH sources, episodes, entities, facts, count(m) AS mentions
OPTIONAL MATCH (:Entity {group_id: $group_id})-[y:SYNONYM]->()
RETURN sources, episodes, entities, facts, mentions, count(y) AS synonyms

// name: entity_get
MATCH (n:Entity {uuid: $uuid, group_id: $group_id})
OPTIONAL MATCH (e:Episode {group_id: $group_id})-[:MENTIONS]->(n)
RETURN n.uuid AS uuid, n.name AS name, n.type AS type, n.aliases AS aliases, n.summary AS summary,
       count(e) AS mentions
