"""pytest settings for the nbval run of the study notebooks."""

# nbval waits a fixed 5 s for each kernel message after a cell's reply (not configurable in
# nbval 0.11). On a loaded 2-core CI runner the kernel's IOPub thread can lag behind that after a
# long training cell (tqdm widget updates are queued ahead of the idle message), which fails a cell
# that ran correctly. Two minutes still fails a kernel that is really stuck.
NBVAL_OUTPUT_TIMEOUT_S = 120


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S
