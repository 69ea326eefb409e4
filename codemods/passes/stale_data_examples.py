"""SQF009 examples and leave-alone cases for a handler of ``StaleDataError`` that reads an
instance before any rollback: the one the ``try`` adds and commits (``self``, or a parameter),
or one the function loaded. Only an UPDATE or DELETE of a row already in the database raises
``StaleDataError``, so the flush failed and that instance was persistent: the failed flush
expired it, and the read raises PendingRollbackError."""

from __future__ import annotations

from .base import Example, Valid

# A model with a version counter: a flush that finds another version raises StaleDataError.
_DOCUMENTS = '''
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column()
    title: Mapped[str]
    __mapper_args__ = {"version_id_col": version}


class Conflict(Exception):
    pass
'''

PROJECT = {"app/documents.py": _DOCUMENTS}

EXAMPLES = (
    Example(
        title="an async method of an abstract mapped base adds and commits self; its StaleDataError "
              "handler reads `self.id` for the message",
        before='''
        from sqlalchemy.ext.asyncio import AsyncSession
        from sqlalchemy.orm import Mapped, mapped_column
        from sqlalchemy.orm.exc import StaleDataError

        from app.db import Base


        class Record(Base):
            __abstract__ = True
            id: Mapped[int] = mapped_column(primary_key=True)

            async def save(self, session: AsyncSession) -> "Record":
                try:
                    session.add(self)
                    await session.commit()
                    return self
                except StaleDataError as error:
                    raise LookupError(f"{self.__class__.__name__} {self.id} was changed meanwhile") from error
        ''',
    ),
    Example(
        title="a function adds and commits the document it is handed; the handler logs its title "
              "and re-raises",
        before='''
        import logging

        from sqlalchemy.exc import IntegrityError
        from sqlalchemy.orm import Session
        from sqlalchemy.orm import exc as orm_exc

        from app.documents import Document

        log = logging.getLogger(__name__)


        def publish(session: Session, document: Document) -> None:
            try:
                session.add(document)
                session.commit()
            except (orm_exc.StaleDataError, IntegrityError):
                log.warning("%s was changed meanwhile", document.title)
                raise
        ''',
    ),
    Example(
        title="a loaded document, renamed and committed; the StaleDataError handler names it in "
              "the error it raises",
        before='''
        from sqlalchemy.orm.exc import StaleDataError

        from app.db import SessionLocal
        from app.documents import Conflict, Document


        def retitle(document_id: int, title: str) -> None:
            with SessionLocal() as session:
                document = session.get(Document, document_id)
                document.title = title
                try:
                    session.commit()
                except StaleDataError as error:
                    raise Conflict(f"document {document.id} was changed meanwhile") from error
        ''',
    ),
    Example(
        title="a model's method logs itself before the rollback: reported, not moved (the row "
              "may be gone, and the read after the rollback would load it)",
        before='''
        import logging

        from sqlalchemy.orm import Session
        from sqlalchemy.orm.exc import StaleDataError

        from app.documents import Document

        log = logging.getLogger(__name__)


        class Draft(Document):
            def store(self, session: Session) -> None:
                try:
                    session.add(self)
                    session.flush()
                except StaleDataError:
                    log.warning("draft %s is stale", self.title)
                    session.rollback()
                    raise
        ''',
    ),
)

VALID = (
    Valid(
        '''
        from sqlalchemy.orm import Session
        from sqlalchemy.orm.exc import StaleDataError

        from app.documents import Document


        def create(session: Session, title: str) -> Document:
            document = Document(title=title)
            try:
                session.add(document)
                session.commit()
            except StaleDataError as error:
                raise LookupError(f"{document.title} was not saved") from error
            return document
        ''',
        "an instance built in the function and added in the try is new: when the flush fails "
        "SQLAlchemy takes it out of the session, and its attributes stay readable",
    ),
    Valid(
        '''
        from sqlalchemy.exc import IntegrityError
        from sqlalchemy.orm import Session

        from app.documents import Conflict, Document


        class Sheet(Document):
            def save(self, session: Session) -> None:
                try:
                    session.add(self)
                    session.commit()
                except IntegrityError as error:
                    raise Conflict(f"{self.title} is taken") from error
        ''',
        "a handler of IntegrityError only, with no rollback: `self` may be new (its INSERT "
        "failed, and it stays readable); nothing proves it was persistent",
    ),
    Valid(
        '''
        from sqlalchemy.orm import Session
        from sqlalchemy.orm.exc import StaleDataError

        from app.documents import Conflict, Document


        class Sheet(Document):
            def save(self, session: Session) -> None:
                try:
                    session.add(self)
                    session.commit()
                except StaleDataError as error:
                    session.rollback()
                    raise Conflict(f"{self.title} was changed meanwhile") from error
        ''',
        "the handler rolls back before the read: the session can load the row again",
    ),
    Valid(
        '''
        from sqlalchemy.orm import Session
        from sqlalchemy.orm.exc import StaleDataError

        from app.documents import Conflict, Document


        class Sheet(Document):
            def save(self, session: Session) -> None:
                sheet_id = self.id
                try:
                    session.add(self)
                    session.commit()
                except StaleDataError as error:
                    raise Conflict(f"{self.__class__.__name__} {sheet_id} was changed meanwhile") from error
        ''',
        "the id was taken before the try, and `self.__class__.__name__` reads no mapped attribute",
    ),
    Valid(
        '''
        from sqlalchemy.orm import Session
        from sqlalchemy.orm.exc import StaleDataError

        from app.documents import Conflict, Document


        def publish(session: Session, document: Document) -> None:
            try:
                if not document.title:
                    raise ValueError("no title")
                session.add(document)
                session.commit()
            except (StaleDataError, ValueError) as error:
                raise Conflict(f"{document.title!r} not published") from error
        ''',
        "the handler also catches an error raised before any flush (`ValueError`): reaching it "
        "does not prove that the flush failed",
    ),
    Valid(
        '''
        from sqlalchemy.orm import Session
        from sqlalchemy.orm.exc import StaleDataError

        from app.documents import Conflict, Document


        def publish_both(session: Session, document: Document, other: Document) -> None:
            try:
                session.add(document)
                session.add(other)
                session.commit()
            except StaleDataError as error:
                raise Conflict(f"{document.title} not published") from error
        ''',
        "the try adds two instances it is handed: the stale row may be the other's, and this "
        "one may be new (readable)",
    ),
)
