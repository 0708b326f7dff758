import os
import sys

# fixture_stores.py is importable as a store spec: "fixture_stores:DeadlockStore"
sys.path.insert(0, os.path.dirname(__file__))
