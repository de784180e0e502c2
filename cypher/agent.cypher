// Reads of the agent faces (graphmem.mcp): run through Memory.cypher, read-only,
// on both stores. Every query takes $group_id (the caller's group).

// name: agent_entity
// The entity an agent names: by uuid, normalised name ($key) or alias; the most
// mentioned match first.
MATCH (n:Entity {group_id: $group_id})
WHERE n.uuid = $name OR n.name_key = $key OR $name IN n.aliases
OPTIONAL MATCH (n)<-[m:MENTIONS]-()
WITH n, count(m) AS mentions
RETURN n.uuid AS uuid, n.name AS name, n.type AS type, n.aliases AS aliases, n.summary AS summary, mentions
ORDER BY mentions DESC, name
LIMIT 1

// name: agent_mentioning
// The passages that mention an entity, newest first.
MATCH (e:Episode {group_id: $group_id})-[:MENTIONS]->(n:Entity {uuid: $uuid, group_id: $group_id})
RETURN e.uuid AS uuid
ORDER BY e.ingested_at DESC, e.position DESC
LIMIT $limit

// name: agent_source_episodes
// The episodes of one source (by name), in order: what an acknowledged write stored.
MATCH (s:Source {name: $name, group_id: $group_id})-[:HAS_EPISODE]->(e:Episode)
RETURN e.uuid AS uuid
ORDER BY e.position
LIMIT $limit

// name: agent_recent_episodes
// The most recently ingested episodes.
MATCH (e:Episode {group_id: $group_id})
RETURN e.uuid AS uuid
ORDER BY e.ingested_at DESC, e.position DESC
LIMIT $limit
