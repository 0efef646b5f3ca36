//! Semantic diff of images and dumps (work in progress).
