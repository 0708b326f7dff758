"""The card's folders install as one import package, ``sessioncheck``:
``harness/`` is the package itself, ``store_impl/`` its ``stores`` and
``scenarios/`` its ``scenarios``.  Everything else is in pyproject.toml;
this file only finds the packages under each folder."""
from setuptools import find_packages, setup

ROOTS = {"sessioncheck": "harness", "sessioncheck.stores": "store_impl", "sessioncheck.scenarios": "scenarios"}

packages: list[str] = []
for name, folder in ROOTS.items():
    packages += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]

setup(packages=packages, package_dir=ROOTS, package_data={"sessioncheck.stores": ["*/*.md"]})
