"""The stage graph of a multi-stage build: which stages reach the final image (through ``FROM`` or
``COPY --from``/``RUN --mount=from=``), and what the final image inherits along its ``FROM`` chain (ENV, USER,
CMD, ENTRYPOINT, EXPOSE, WORKDIR), including what a known base image sets itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastlaunch.kit.lint.grammar import Instruction, env_pairs, expand, split
from fastlaunch.kit.lint.images import BaseImage, known_base


@dataclass
class Stage:
    index: int
    head: Instruction  # its FROM
    body: list[Instruction]
    base: str  # the FROM image with build arguments expanded (still holding `$` when one has no default)
    name: str | None  # lower case, as Docker compares them
    parent: Stage | None = None  # the stage it is built FROM, if any
    args: dict[str, str] = field(default_factory=dict)  # build arguments with their defaults, in scope


@dataclass
class Build:
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, ref: str, before: int) -> Stage | None:
        """The earlier stage a --from= or FROM names (by name or index), or None for an image."""
        ref = ref.lower()
        for stage in self.stages[:before]:
            if stage.name == ref or str(stage.index) == ref:
                return stage
        return None

    def chain(self, stage: Stage | None = None) -> list[Stage]:
        """The stage and the stages it is built FROM, outermost first: the layers of its image."""
        found: list[Stage] = []
        current: Stage | None = stage or self.final
        while current is not None:
            found.insert(0, current)
            current = current.parent
        return found

    def feeding(self) -> set[int]:
        """The stages whose files can reach the final image: its FROM chain and what it copies or mounts from."""
        seen: set[int] = set()
        todo = [self.final]
        while todo:
            stage = todo.pop()
            if stage.index in seen:
                continue
            seen.add(stage.index)
            if stage.parent is not None:
                todo.append(stage.parent)
            todo += [s for ref in _references(stage) if (s := self.stage(ref, stage.index)) is not None]
        return seen

    def external_references(self, stage: Stage) -> list[tuple[Instruction, str, str]]:
        """(instruction, how, image) for each image (not stage) a COPY --from or RUN --mount=from= names."""
        found = []
        for ins in stage.body:
            for how, ref in _refs_of(ins):
                image = expand(ref, stage.args)
                if image is not None and self.stage(image, stage.index) is None:
                    found.append((ins, how, image))
        return found

    @property
    def base(self) -> BaseImage | None:
        """What fastlaunch knows of the image the final stage's chain starts from."""
        return known_base(self.chain()[0].base)

    def last(self, keyword: str) -> Instruction | None:
        """The final image's last ``keyword`` instruction along its chain."""
        found = None
        for stage in self.chain():
            for ins in stage.body:
                if ins.keyword == keyword:
                    found = ins
        return found

    def command(self) -> tuple[Instruction | None, Instruction | None]:
        """The final image's (ENTRYPOINT, CMD): a later ENTRYPOINT drops a CMD set before it in another stage,
        as Docker does with a base image's CMD."""
        entrypoint: Instruction | None = None
        cmd: Instruction | None = None
        for stage in self.chain():
            inherited = cmd
            for ins in stage.body:
                if ins.keyword == "ENTRYPOINT":
                    entrypoint = ins
                    cmd = None if cmd is inherited else cmd
                elif ins.keyword == "CMD":
                    cmd = ins
        return entrypoint, cmd

    def env(self) -> dict[str, str]:
        """The final image's environment (values with their variables expanded where known)."""
        base = self.base
        values = dict(base.env) if base else {}
        for stage in self.chain():
            for ins in stage.body:
                if ins.keyword == "ENV":
                    for key, value in env_pairs(ins):
                        expanded = expand(value, {**stage.args, **values})
                        values[key] = expanded if expanded is not None else value
        return values

    def exposed(self) -> tuple[set[int], bool]:
        """The ports the final image EXPOSEs, and whether any EXPOSE could not be read (a variable)."""
        base = self.base
        ports = set(base.exposed) if base else set()
        unknown = False
        env: dict[str, str] = {}
        for stage in self.chain():
            for ins in stage.body:
                if ins.keyword == "ENV":
                    env.update(env_pairs(ins))
                if ins.keyword == "EXPOSE":
                    for word in ins.value:
                        port = (expand(word, {**stage.args, **env}) or "").split("/")[0]
                        if port.isdigit():
                            ports.add(int(port))
                        else:
                            unknown = True
        return ports, unknown


def _refs_of(ins: Instruction) -> list[tuple[str, str]]:
    found = []
    if ins.keyword in ("COPY", "ADD") and (ref := ins.flag("from")):
        found.append(("COPY --from=", ref))
    if ins.keyword == "RUN":
        for flag in ins.flags:
            if flag.startswith("--mount="):
                options = dict(o.partition("=")[::2] for o in flag.removeprefix("--mount=").split(","))
                if options.get("from"):
                    found.append(("RUN --mount=from=", options["from"]))
    return found


def _references(stage: Stage) -> list[str]:
    return [expand(ref, stage.args) or ref for ins in stage.body for _, ref in _refs_of(ins)]


def _arg_defaults(ins: Instruction, scope: dict[str, str], globals_: dict[str, str]) -> None:
    for word in ins.value:
        key, eq, value = word.partition("=")
        if eq:
            scope[key] = " ".join(split(value)) if value else ""
        elif key in globals_:  # `ARG X` inside a stage brings the global default in
            scope[key] = globals_[key]


def build_graph(instructions: list[Instruction]) -> Build:
    """The stages; instructions before the first FROM are its global ARGs (or nothing, in a file without one)."""
    globals_: dict[str, str] = {}
    stages: list[Stage] = []
    build = Build(stages)
    for ins in instructions:
        if ins.keyword == "FROM":
            image = ins.value[0] if ins.value else ""
            base = expand(image, globals_) or image
            name = ins.value[2].lower() if len(ins.value) == 3 else None
            stage = Stage(len(stages), ins, [], base, name, build.stage(base, len(stages)), {})
            stages.append(stage)
        elif not stages:
            if ins.keyword == "ARG":
                _arg_defaults(ins, globals_, globals_)
        else:
            if ins.keyword == "ARG":
                _arg_defaults(ins, stages[-1].args, globals_)
            stages[-1].body.append(ins)
    return build
