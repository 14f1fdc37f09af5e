"""Ingestion of results made elsewhere (ESC-Eval transcripts and scores, SAGE result files) into run folders."""
