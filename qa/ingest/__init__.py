"""Reading a corpus: walking its folder, each format's reader, and the metadata of a document."""
