"""Memories: storage, embeddings, sectors and retrieval."""
