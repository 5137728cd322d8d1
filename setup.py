"""PyKam packaging: packages sipcore* and modules*, the cffi extensions, the console scripts."""
from setuptools import find_packages, setup

setup(
    name="pykam",
    version="0.1.0",
    description="A Kamailio-compatible SIP server (proxy, registrar, router) in Python",
    python_requires=">=3.10",
    packages=find_packages(include=["sipcore", "sipcore.*", "modules", "modules.*"]),
    setup_requires=["cffi>=1.15,<3"],
    cffi_modules=["cffi_build/build_sipparse.py:ffibuilder", "cffi_build/build_shm.py:ffibuilder"],
    install_requires=[
        "cffi>=1.15,<3",
        "posix_ipc>=1.1,<2",
        "sqlalchemy>=2.0,<3",
        "lupa>=2.0,<3",
        "click>=8.1,<9",
        "PyMySQL>=1.0,<2",          # mysql:// db_url (pure Python, no client library)
        "psycopg[binary]>=3.1,<4",  # postgres:// db_url (binary wheel, no libpq needed)
    ],
    extras_require={
        "test": ["pytest>=7,<10", "cryptography>=41"],  # cryptography: TLS test certificates
    },
    entry_points={
        "console_scripts": [
            "pykam=sipcore.cli.server:main",
            "pykamcmd=sipcore.cli.ctl:main",
            "pykamctl=sipcore.cli.ops:main",
        ]
    },
    include_package_data=True,
    zip_safe=False,
)
