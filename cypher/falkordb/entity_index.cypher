// The entity index's pages on FalkorDB: a graph holds one group, and a group_id
// filter would make the planner scan the group_id index (every entity) instead of
// seeking the page's node ids.

// name: entity_index_span
MATCH (n:Entity)
RETURN max(id(n)) AS last

// name: entity_index_ids
MATCH (n:Entity)
WHERE id(n) >= $lo AND id(n) < $hi
RETURN n.uuid AS uuid, n.name_key AS name_key, n.embedding AS embedding
