// FalkorDB schema: range indexes for lookups by uuid / group / name, a vector
// index for embedding search over passages, full-text on passage content.
// Creating an index that exists fails; the store ignores that error.
// Entity and fact vectors are stored but not indexed: graphmem's resolution and
// retrieval hold them in memory, and FalkorDB updates an HNSW index on every
// write: at 30k entities that cost 2.5 ms per vector against 0.2 ms without, and
// the fact index alone cost 4.3 ms per ingested passage (~6.5 facts each), more
// than every other write together. Both are stored packed (vectors.cypher).

// name: schema_episode_uuid
CREATE INDEX FOR (e:Episode) ON (e.uuid)
// name: schema_episode_group
CREATE INDEX FOR (e:Episode) ON (e.group_id)
// name: schema_entity_uuid
CREATE INDEX FOR (n:Entity) ON (n.uuid)
// name: schema_entity_group
CREATE INDEX FOR (n:Entity) ON (n.group_id)
// name: schema_entity_key
CREATE INDEX FOR (n:Entity) ON (n.name_key)
// name: schema_source_uuid
CREATE INDEX FOR (s:Source) ON (s.uuid)
// name: schema_source_name
CREATE INDEX FOR (s:Source) ON (s.name)
// name: schema_source_state
// the few sources in 'writing' (renewed after every batch), without a scan of every source
CREATE INDEX FOR (s:Source) ON (s.state)
// name: schema_meta_group
CREATE INDEX FOR (m:GraphMeta) ON (m.group_id)
// name: schema_fact_uuid
CREATE INDEX FOR ()-[f:FACT]-() ON (f.uuid)
// name: schema_episode_vector
CREATE VECTOR INDEX FOR (e:Episode) ON (e.embedding) OPTIONS {dimension: {dim}, similarityFunction: 'cosine'}
// name: schema_episode_fulltext
CALL db.idx.fulltext.createNodeIndex('Episode', 'content')
