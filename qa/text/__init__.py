"""Pure text work: chunking into passages with exact spans, sentences, CJK bigrams, sections, quotes."""
