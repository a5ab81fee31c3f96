"""Code that runs inside agent containers. Stdlib only; it never imports the rest of rsi_bench
(``model_client.py`` is copied into the container as a single file)."""
