//! File formats shared by the file and object-store connectors.
