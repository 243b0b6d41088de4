"""Small folders of real LFW people for training-run tests: links to LFW's own person folders
(never copies), one sub-folder per person, as --public and --reference expect."""

from __future__ import annotations

from pathlib import Path

from training.data import reference_people


def linked_people(faces_dir: Path, target: Path, count: int, *, reference: bool, min_images: int = 4) -> Path:
    """``count`` LFW people with ``min_images`` photos or more: from LFW DevTest's people when
    ``reference``, else from the others (the people a run may train on)."""
    devtest = reference_people(faces_dir)
    target.mkdir(parents=True, exist_ok=True)
    chosen = 0
    for person in sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir()):
        if (person.name in devtest) != reference or len(list(person.glob("*.jpg"))) < min_images:
            continue
        (target / person.name).symlink_to(person.resolve(), target_is_directory=True)
        chosen += 1
        if chosen == count:
            return target
    raise AssertionError(f"fewer than {count} LFW people with {min_images} photos")
