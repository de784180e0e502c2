// Moving a graph between stores (graphmem export / import / migrate).
// Every kind of node and relationship has three queries:
//   count_KIND   how many there are (all groups, or only $group_id when it is not null)
//   export_KIND  one page in key order after $after ($limit keys); properties() carries
//                every property, the embedding included (graphmem/store/transfer.py moves
//                it to the dialect's *_embeddings_set query on import, since vector
//                types differ between stores)
//   import_KIND  MERGE on the key, then SET += the properties: replaying a page is harmless,
//                which is what makes `graphmem migrate` resumable.
// Relationships without a uuid are paged by their start node: a page holds the
// relationships of up to $limit start nodes (OPTIONAL MATCH keeps a row for a start
// node without any, so the page's last key still advances).

// name: count_sources
MATCH (n:Source) WHERE $group_id IS NULL OR n.group_id = $group_id
RETURN count(n) AS n

// name: export_sources
MATCH (n:Source) WHERE n.uuid > $after AND ($group_id IS NULL OR n.group_id = $group_id)
RETURN n.uuid AS key, properties(n) AS props
ORDER BY key LIMIT $limit

// name: import_sources
UNWIND $rows AS r
MERGE (n:Source {uuid: r.key})
SET n += r.props

// name: count_episodes
MATCH (n:Episode) WHERE $group_id IS NULL OR n.group_id = $group_id
RETURN count(n) AS n

// name: export_episodes
MATCH (n:Episode) WHERE n.uuid > $after AND ($group_id IS NULL OR n.group_id = $group_id)
RETURN n.uuid AS key, properties(n) AS props
ORDER BY key LIMIT $limit

// name: import_episodes
UNWIND $rows AS r
MERGE (n:Episode {uuid: r.key})
SET n += r.props

// name: count_entities
MATCH (n:Entity) WHERE $group_id IS NULL OR n.group_id = $group_id
RETURN count(n) AS n

// name: export_entities
MATCH (n:Entity) WHERE n.uuid > $after AND ($group_id IS NULL OR n.group_id = $group_id)
RETURN n.uuid AS key, properties(n) AS props
ORDER BY key LIMIT $limit

// name: import_entities
UNWIND $rows AS r
MERGE (n:Entity {uuid: r.key})
SET n += r.props

// name: count_meta
MATCH (n:GraphMeta) WHERE $group_id IS NULL OR n.group_id = $group_id
RETURN count(n) AS n

// name: export_meta
MATCH (n:GraphMeta) WHERE n.group_id > $after AND ($group_id IS NULL OR n.group_id = $group_id)
RETURN n.group_id AS key, properties(n) AS props
ORDER BY key LIMIT $limit

// name: import_meta
UNWIND $rows AS r
MERGE (n:GraphMeta {group_id: r.key})
SET n += r.props

// name: count_has_episode
MATCH (a:Source)-[r:HAS_EPISODE]->(:Episode) WHERE $group_id IS NULL OR a.group_id = $group_id
RETURN count(r) AS n

// name: export_has_episode
MATCH (a:Source) WHERE a.uuid > $after AND ($group_id IS NULL OR a.group_id = $group_id)
WITH a ORDER BY a.uuid LIMIT $limit
OPTIONAL MATCH (a)-[r:HAS_EPISODE]->(b:Episode)
RETURN a.uuid AS key, b.uuid AS end, properties(r) AS props

// name: import_has_episode
UNWIND $rows AS r
MATCH (a:Source {uuid: r.start}), (b:Episode {uuid: r.end})
MERGE (a)-[x:HAS_EPISODE]->(b)
SET x += r.props

// name: count_next
MATCH (a:Episode)-[r:NEXT]->(:Episode) WHERE $group_id IS NULL OR a.group_id = $group_id
RETURN count(r) AS n

// name: export_next
MATCH (a:Episode) WHERE a.uuid > $after AND ($group_id IS NULL OR a.group_id = $group_id)
WITH a ORDER BY a.uuid LIMIT $limit
OPTIONAL MATCH (a)-[r:NEXT]->(b:Episode)
RETURN a.uuid AS key, b.uuid AS end, properties(r) AS props

// name: import_next
UNWIND $rows AS r
MATCH (a:Episode {uuid: r.start}), (b:Episode {uuid: r.end})
MERGE (a)-[x:NEXT]->(b)
SET x += r.props

// name: count_mentions
MATCH (a:Episode)-[r:MENTIONS]->(:Entity) WHERE $group_id IS NULL OR a.group_id = $group_id
RETURN count(r) AS n

// name: export_mentions
MATCH (a:Episode) WHERE a.uuid > $after AND ($group_id IS NULL OR a.group_id = $group_id)
WITH a ORDER BY a.uuid LIMIT $limit
OPTIONAL MATCH (a)-[r:MENTIONS]->(b:Entity)
RETURN a.uuid AS key, b.uuid AS end, properties(r) AS props

// name: import_mentions
UNWIND $rows AS r
MATCH (a:Episode {uuid: r.start}), (b:Entity {uuid: r.end})
MERGE (a)-[x:MENTIONS]->(b)
SET x += r.props

// name: count_synonyms
MATCH (a:Entity)-[r:SYNONYM]->(:Entity) WHERE $group_id IS NULL OR a.group_id = $group_id
RETURN count(r) AS n

// name: export_synonyms
MATCH (a:Entity) WHERE a.uuid > $after AND ($group_id IS NULL OR a.group_id = $group_id)
WITH a ORDER BY a.uuid LIMIT $limit
OPTIONAL MATCH (a)-[r:SYNONYM]->(b:Entity)
RETURN a.uuid AS key, b.uuid AS end, properties(r) AS props

// name: import_synonyms
UNWIND $rows AS r
MATCH (a:Entity {uuid: r.start}), (b:Entity {uuid: r.end})
MERGE (a)-[x:SYNONYM]->(b)
SET x += r.props

// name: count_facts
MATCH (a:Entity)-[f:FACT]->(:Entity) WHERE $group_id IS NULL OR a.group_id = $group_id
RETURN count(f) AS n

// name: export_facts
MATCH (a:Entity)-[f:FACT]->(b:Entity)
WHERE f.uuid > $after AND ($group_id IS NULL OR a.group_id = $group_id)
RETURN f.uuid AS key, a.uuid AS start, b.uuid AS end, properties(f) AS props
ORDER BY key LIMIT $limit

// name: import_facts
UNWIND $rows AS r
MATCH (a:Entity {uuid: r.start}), (b:Entity {uuid: r.end})
MERGE (a)-[f:FACT {uuid: r.key}]->(b)
SET f += r.props

// name: group_delete
// Forget a whole tenant group: every node carrying its group_id, with its relationships.
MATCH (n) WHERE n.group_id = $group_id
DETACH DELETE n
RETURN count(*) AS deleted

// name: groups_in_graph
// The groups whose data one graph (or database) holds: how a store that keeps
// groups apart by property lists them, and how a store of an older graphmem
// (every group in one FalkorDB graph) is split into a graph per group.
MATCH (m:GraphMeta) RETURN DISTINCT m.group_id AS group_id
UNION
MATCH (s:Source) RETURN DISTINCT s.group_id AS group_id
UNION
MATCH (e:Entity) RETURN DISTINCT e.group_id AS group_id
