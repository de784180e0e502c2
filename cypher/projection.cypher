// The in-memory projection for PPR: nodes, edges and the vectors retrieval
// scores against, read page by page ($skip, $limit) for one group.

// Only episodes of complete sources: a reader never sees half of a source
// that is being written (or was left half-written by a crash).
// name: projection_episodes
MATCH (:Source {group_id: $group_id, state: 'complete'})-[:HAS_EPISODE]->(e:Episode {group_id: $group_id})
// content: the text BM25 indexes (a dialogue turn's search_text adds its date and speaker)
RETURN e.uuid AS uuid, coalesce(e.search_text, e.content) AS content, e.occurred_at AS occurred_at,
       e.embedding AS embedding
ORDER BY e.uuid SKIP $skip LIMIT $limit

// name: projection_entities
MATCH (n:Entity {group_id: $group_id})
RETURN n.uuid AS uuid, n.name AS name
ORDER BY n.uuid SKIP $skip LIMIT $limit

// name: projection_mentions
MATCH (:Source {group_id: $group_id, state: 'complete'})-[:HAS_EPISODE]->(e:Episode {group_id: $group_id})-[m:MENTIONS]->(n:Entity)
RETURN e.uuid AS episode, n.uuid AS entity, m.count AS count,
       CASE WHEN m.role = 'speaker' OR e.speaker IN n.aliases THEN 'speaker' ELSE '' END AS role
ORDER BY episode, entity SKIP $skip LIMIT $limit

// name: projection_facts
MATCH (a:Entity {group_id: $group_id})-[f:FACT]->(b:Entity)
RETURN f.uuid AS uuid, a.uuid AS subject, b.uuid AS object, f.predicate AS predicate,
       f.text AS text, f.valid_at AS valid_at, f.invalid_at AS invalid_at,
       f.expired_at AS expired_at, f.episodes AS episodes, f.embedding AS embedding
ORDER BY uuid SKIP $skip LIMIT $limit

// name: projection_synonyms
MATCH (a:Entity {group_id: $group_id})-[s:SYNONYM]->(b:Entity)
RETURN a.uuid AS a, b.uuid AS b, s.score AS score
ORDER BY a, b SKIP $skip LIMIT $limit

// name: projection_next
// Turn (and passage) order; walked by PPR with RetrievalSettings.next_weight.
MATCH (a:Episode {group_id: $group_id})-[:NEXT]->(b:Episode)
RETURN a.uuid AS a, b.uuid AS b
ORDER BY a, b SKIP $skip LIMIT $limit
