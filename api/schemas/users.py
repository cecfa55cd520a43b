"""Schemas of accounts: login, users, password changes and API tokens."""

from __future__ import annotations

from typing import Any

from api.schemas.common import TIMESTAMP, TIMESTAMP_OR_NULL
from hub.store.users import ROLES

ROLE_ENUM = list(ROLES)

LOGIN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024, "writeOnly": True},
    },
}

TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["token", "expiresIn"],
    "properties": {"token": {"type": "string"}, "expiresIn": {"type": "string"}},
}

USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "username", "role"],
    "properties": {
        "id": {"type": "string"},
        "username": {"type": "string"},
        "role": {"enum": ROLE_ENUM},
        "disabled": {"type": "boolean"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
}

USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"}
PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024, "writeOnly": True}

PASSWORD_CHANGE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["current_password", "new_password"],
    "properties": {
        "current_password": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
            "writeOnly": True,
        },
        "new_password": PASSWORD,
    },
}

USER_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password", "role"],
    "properties": {"username": USERNAME, "password": PASSWORD, "role": {"enum": ROLE_ENUM}},
}

USER_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "password": PASSWORD,
        "role": {"enum": ROLE_ENUM},
        "disabled": {
            "type": "boolean",
            "description": "a disabled account cannot log in and its tokens stop working",
        },
    },
}

API_TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["id", "user_id", "username", "name", "role", "created_at", "expires_at"],
    "properties": {
        "id": {"type": "string"},
        "user_id": {"type": "string"},
        "username": {"type": "string"},
        "name": {"type": "string"},
        "role": {"enum": ROLE_ENUM},
        "created_at": TIMESTAMP,
        "expires_at": TIMESTAMP_OR_NULL,
        "last_used_at": TIMESTAMP_OR_NULL,
    },
}

API_TOKEN_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "role": {"enum": ROLE_ENUM, "description": "default: the creator's role"},
        "expires_at": {
            **TIMESTAMP_OR_NULL,
            "description": "in the future; null or absent: never expires",
        },
    },
}

API_TOKEN_CREATED: dict[str, Any] = {
    **API_TOKEN,
    "required": [*API_TOKEN["required"], "token"],
    "properties": {
        **API_TOKEN["properties"],
        "token": {"type": "string", "description": "the secret, shown only in this answer"},
    },
}
