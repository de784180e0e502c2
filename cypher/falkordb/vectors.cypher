// FalkorDB stores searchable vectors as vecf32; its procedures return a cosine
// distance, turned into a similarity here so both stores score alike.

// Entity and fact vectors are searched by nobody in the store (resolution and
// retrieval hold them in memory), so the store writes them packed: r.embedding
// arrives as one base64 string of float32s (graphmem/store/falkordb.py,
// _PACKED_VECTORS), and there is no facts_vector_search here (Neo4j has one).
// name: entity_embeddings_set
UNWIND $rows AS r
MATCH (n:Entity {uuid: r.uuid})
SET n.embedding = r.embedding

// name: episode_embeddings_set
UNWIND $rows AS r
MATCH (e:Episode {uuid: r.uuid})
SET e.embedding = vecf32(r.embedding)

// name: fact_embeddings_set
UNWIND $rows AS r
MATCH (:Entity {uuid: r.subject})-[f:FACT {uuid: r.uuid}]->()
SET f.embedding = r.embedding

// name: episodes_vector_search
CALL db.idx.vector.queryNodes('Episode', 'embedding', $k, vecf32($vector)) YIELD node, score
WITH node, score WHERE node.group_id = $group_id
RETURN node.uuid AS uuid, 1.0 - score AS score
ORDER BY score DESC

// name: episodes_fulltext_search
CALL db.idx.fulltext.queryNodes('Episode', $text) YIELD node, score
WITH node, score WHERE node.group_id = $group_id
RETURN node.uuid AS uuid, score
ORDER BY score DESC LIMIT $k
