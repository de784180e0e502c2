// FalkorDB stores vectors as vecf32; its procedures return a cosine
// distance, turned into a similarity here so both stores score alike.

// name: entity_embeddings_set
UNWIND $rows AS r
MATCH (n:Entity {uuid: r.uuid})
SET n.embedding = vecf32(r.embedding)

// name: episode_embeddings_set
UNWIND $rows AS r
MATCH (e:Episode {uuid: r.uuid})
SET e.embedding = vecf32(r.embedding)

// name: fact_embeddings_set
UNWIND $rows AS r
MATCH (:Entity {uuid: r.subject})-[f:FACT {uuid: r.uuid}]->()
SET f.embedding = vecf32(r.embedding)

// name: episodes_vector_search
CALL db.idx.vector.queryNodes('Episode', 'embedding', $k, vecf32($vector)) YIELD node, score
WITH node, score WHERE node.group_id = $group_id
RETURN node.uuid AS uuid, 1.0 - score AS score
ORDER BY score DESC

// name: facts_vector_search
CALL db.idx.vector.queryRelationships('FACT', 'embedding', $k, vecf32($vector)) YIELD relationship, score
WITH relationship AS f, score WHERE f.group_id = $group_id
RETURN f.uuid AS uuid, f.text AS text, 1.0 - score AS score
ORDER BY score DESC

// name: episodes_fulltext_search
CALL db.idx.fulltext.queryNodes('Episode', $text) YIELD node, score
WITH node, score WHERE node.group_id = $group_id
RETURN node.uuid AS uuid, score
ORDER BY score DESC LIMIT $k
