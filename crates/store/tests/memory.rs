//! The conformance suite against [`store::MemoryStore`].

store::conformance_tests!(store::MemoryStore::new());
