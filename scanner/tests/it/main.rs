//! The scanner's integration tests, in one binary: the gate screen under
//! egui_kittest, the headless subcommands, replays of photographed frames, a
//! crash mid-replay, sync against a real `jo-server` and against a fake one
//! that lies. One binary rather than one per file: the scanner, the server
//! and their dependencies are linked once, which keeps the test build small
//! and quick.

mod common;

mod cli;
mod crash;
mod hostile;
mod live;
mod lying_server;
mod peers;
mod peers_mdns;
mod replay;
mod sync_e2e;
mod tour;
mod transfers;
mod ui;
mod ui_enroll;
mod ui_screenshot;
