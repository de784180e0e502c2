// Neo4j 5 schema (5.18 or later: relationship vector indexes). Every
// statement says IF NOT EXISTS, so ensure_schema can run on every start.
// Uniqueness constraints back the MERGEs on uuid (and make concurrent
// writers safe); range indexes serve the tenant and name lookups; vector
// indexes serve embedding search over passages and facts and a full-text
// index serves keyword search. Entity vectors are stored but not indexed:
// resolution reads them into memory, and an index on the largest label
// would cost every write (see cypher/falkordb/schema.cypher).

// name: schema_episode_uuid
CREATE CONSTRAINT graphmem_episode_uuid IF NOT EXISTS FOR (e:Episode) REQUIRE e.uuid IS UNIQUE
// name: schema_entity_uuid
CREATE CONSTRAINT graphmem_entity_uuid IF NOT EXISTS FOR (n:Entity) REQUIRE n.uuid IS UNIQUE
// name: schema_source_uuid
CREATE CONSTRAINT graphmem_source_uuid IF NOT EXISTS FOR (s:Source) REQUIRE s.uuid IS UNIQUE
// name: schema_meta_group
CREATE CONSTRAINT graphmem_meta_group IF NOT EXISTS FOR (m:GraphMeta) REQUIRE m.group_id IS UNIQUE
// name: schema_episode_group
CREATE INDEX graphmem_episode_group IF NOT EXISTS FOR (e:Episode) ON (e.group_id)
// name: schema_entity_group
CREATE INDEX graphmem_entity_group IF NOT EXISTS FOR (n:Entity) ON (n.group_id)
// name: schema_entity_key
CREATE INDEX graphmem_entity_key IF NOT EXISTS FOR (n:Entity) ON (n.group_id, n.name_key)
// name: schema_source_name
CREATE INDEX graphmem_source_name IF NOT EXISTS FOR (s:Source) ON (s.group_id, s.name)
// name: schema_source_state
CREATE INDEX graphmem_source_state IF NOT EXISTS FOR (s:Source) ON (s.group_id, s.state)
// name: schema_fact_uuid
CREATE INDEX graphmem_fact_uuid IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.uuid)
// name: schema_fact_group
CREATE INDEX graphmem_fact_group IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.group_id)
// name: schema_episode_vector
CREATE VECTOR INDEX graphmem_episode_embedding IF NOT EXISTS
FOR (e:Episode) ON (e.embedding)
OPTIONS {indexConfig: {`vector.dimensions`: {dim}, `vector.similarity_function`: 'cosine'}}
// name: schema_fact_vector
CREATE VECTOR INDEX graphmem_fact_embedding IF NOT EXISTS
FOR ()-[f:FACT]-() ON (f.embedding)
OPTIONS {indexConfig: {`vector.dimensions`: {dim}, `vector.similarity_function`: 'cosine'}}
// name: schema_episode_fulltext
CREATE FULLTEXT INDEX graphmem_episode_content IF NOT EXISTS FOR (e:Episode) ON EACH [e.content]

// name: indexes_await
// Run after the schema statements: returns once every index is online (at most 300 s).
CALL db.awaitIndexes(300)

// Databases per group (Neo4jStore(database_per_group=True)), run on the system
// database. Not schema_ queries: ensure_schema runs those inside each database.

// name: database_create
CREATE DATABASE $name IF NOT EXISTS WAIT

// name: database_drop
DROP DATABASE $name IF EXISTS WAIT

// name: databases_list
SHOW DATABASES YIELD name WHERE name STARTS WITH $prefix RETURN DISTINCT name
