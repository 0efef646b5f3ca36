//! Checkpoint a live process into CRIU images (work in progress).
