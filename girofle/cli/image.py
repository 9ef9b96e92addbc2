"""girofle image build."""

from __future__ import annotations

import click

from girofle.lifecycle.app import App


@click.group()
def image() -> None:
    """The tools image Girofle runs restic and ssh in."""


@image.command("build")
@click.option("--base", help="Base image [girofle.yml tools.base_image].")
@click.option("--tag", help="Tag of the image [girofle.yml tools.image].")
@click.pass_obj
def build(app: App, base: str | None, tag: str | None) -> None:
    """Build (or rebuild) the tools image: restic, ssh, the docker CLI and Girofle."""
    from girofle.tools_image import ensure_tools_image

    tools = app.config.tools
    tools = tools.model_copy(update={k: v for k, v in (("base_image", base), ("image", tag)) if v})
    app.progress(f"building {tools.image} from {tools.base_image}")
    click.echo(ensure_tools_image(tools, rebuild=True))
