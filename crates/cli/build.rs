include!("../api/build.rs");
