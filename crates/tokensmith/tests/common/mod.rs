pub mod renamed_server;
