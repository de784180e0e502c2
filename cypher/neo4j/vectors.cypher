// Neo4j stores vectors as plain float lists. Its cosine vector indexes
// score (1 + cos) / 2; the searches turn that back into the cosine so both
// stores score alike. Indexes are addressed by the names schema.cypher gives.

// name: entity_embeddings_set
UNWIND $rows AS r
MATCH (n:Entity {uuid: r.uuid})
SET n.embedding = r.embedding

// name: episode_embeddings_set
UNWIND $rows AS r
MATCH (e:Episode {uuid: r.uuid})
SET e.embedding = r.embedding

// name: fact_embeddings_set
UNWIND $rows AS r
MATCH (:Entity {uuid: r.subject})-[f:FACT {uuid: r.uuid}]->()
SET f.embedding = r.embedding

// name: episodes_vector_search
CALL db.index.vector.queryNodes('graphmem_episode_embedding', $k, $vector) YIELD node, score
WITH node, score WHERE node.group_id = $group_id
RETURN node.uuid AS uuid, 2.0 * score - 1.0 AS score
ORDER BY score DESC

// name: facts_vector_search
CALL db.index.vector.queryRelationships('graphmem_fact_embedding', $k, $vector) YIELD relationship, score
WITH relationship AS f, score WHERE f.group_id = $group_id
RETURN f.uuid AS uuid, f.text AS text, 2.0 * score - 1.0 AS score
ORDER BY score DESC

// name: episodes_fulltext_search
CALL db.index.fulltext.queryNodes('graphmem_episode_content', $text) YIELD node, score
WITH node, score WHERE node.group_id = $group_id
RETURN node.uuid AS uuid, score
ORDER BY score DESC LIMIT $k
