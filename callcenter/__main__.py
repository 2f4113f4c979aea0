"""``python -m callcenter``: the asyncio reactor is installed before anything else."""

from callcenter.aio import install_asyncio_reactor

install_asyncio_reactor()

from callcenter.cli import main  # noqa: E402

main()
