"""A card's payment tokens (wallets, merchants' cards on file) and token requests.

Tokens are registered, suspended, resumed and deleted by an operator, and a wallet's token
request gets the issuer's answer (approved, authentication required or declined).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio

from authhost.admin import requests as rq
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
)
from authhost.admin.service.base import (
    ServiceBase,
)
from authhost.admin.service.leases import drop_quietly, lease_owner
from authhost.admin.views import (
    card_view,
)
from authhost.cards.lifecycle import has_been_activated
from authhost.cards.luhn import is_luhn_valid
from authhost.cards.model import (
    Card,
)
from authhost.cards.provisioning import (
    CVV2_TRIES,
    DAY_S,
    TokenRequestFacts,
    decide_token_request,
)
from authhost.cards.tokens import (
    PaymentToken,
    TokenError,
    TokenState,
    add_token,
    change_state,
    wallet_of,
)

# how often a registration looks again at a token number whose holder changed meanwhile
TOKEN_HOLD_TRIES = 5
# a holder's registration that has not landed in this long is taken as lost (a crash)
TOKEN_HOLD_S = 300.0
# how far a holder's successors are followed (renewals, reissues) for the token
TOKEN_CHAIN_MAX = 20
# a token request's hold on its card (a process that dies holding it blocks the card's token
# requests this long at most)
TOKEN_REQUEST_LEASE_S = 30.0
_AUDIT_PAGE = 200  # a card's audit entries read at once for its CVV2 count
_CVV2_FAILED = "provisioning.cvv2_failed"


class PaymentTokens(ServiceBase):
    """A card's payment tokens and token requests."""

    async def add_token(self, card_id: str, spec: rq.NewToken) -> dict[str, Any]:
        """Register a payment token the network issued for the card: wallet payments with it
        (field 48 SE 33) are approved as the card's while it is active. Refused for a card that
        cannot pay (final states, lost) and for a number that is not Luhn-valid. Audited."""
        card = await self._changeable_card(card_id)
        token, tokens = self._with_new_token(card, spec, TokenState.ACTIVE)
        async with self._token_held(card, token):
            return await self._update(card, replace(card, tokens=tokens), "card.token_add")

    @asynccontextmanager
    async def _token_held(self, card: Card, token: PaymentToken) -> AsyncIterator[None]:
        """Hold the token number for ``card`` while its registration is written: refused
        (409, naming the other card by id) when another card holds it in any state but
        deleted, or is registering it now, and let go again when the write fails. The
        store's hold is atomic, so of two cards registering one number at once, one wins."""
        replacing, holding = "", True
        for _ in range(TOKEN_HOLD_TRIES):
            now = self.clock()
            holder = await self.store.claim_token(token.token_ref, card.card_id, now, replacing)
            if holder.card_id == card.card_id:
                break
            live, deleted, succeeds = await self._holding(holder.card_id, token, card.card_id)
            if live and succeeds:
                # the holder's successor registers the number on its new PAN before taking
                # it over at its activation (``tokens.hand_over`` keeps it as its own): the
                # chain holds it still, so the hold stays where it is, not let go on a failure
                holding = False
                break
            if live:
                raise ConflictError(f"token ...{token.last4} is registered on card {live}")
            if not deleted and now - holder.since < TOKEN_HOLD_S:
                raise ConflictError(
                    f"token ...{token.last4} is being registered on card {holder.card_id}; "
                    "retry if that fails"
                )
            replacing = holder.card_id  # deleted there, or a registration that never landed
        else:
            raise ConflictError(f"token ...{token.last4} kept changing hands; retry")
        try:
            yield
        except BaseException:
            if holding:  # a cancelled request too: else the number is kept from others
                with anyio.CancelScope(shield=True):  # for TOKEN_HOLD_S
                    await self.store.release_token(token.token_ref, card.card_id)
            raise

    async def _holding(
        self, card_id: str, token: PaymentToken, registering: str
    ) -> tuple[str, bool, bool]:
        """Which card of ``card_id`` and its successors (which carry or take its tokens)
        holds the token in any state but deleted ("" when none), whether it is deleted there,
        and whether ``registering`` is a successor of that card. The newest card of the
        chain that lists the token decides (one never activated only when its copy is live):
        a renewal carries a copy of its predecessor's tokens, and the card it retires keeps
        its own copy as it was, which says nothing once the renewal deleted the token."""
        chain: list[Card] = []
        for _ in range(TOKEN_CHAIN_MAX):
            card = await self.store.get_card(card_id)
            if card is None:
                break
            chain.append(card)
            if not card.replaced_by:
                break
            card_id = card.replaced_by
        deleted = False
        for index in range(len(chain) - 1, -1, -1):
            states = {t.state for t in chain[index].tokens if t.token_ref == token.token_ref}
            if not states:
                continue
            if states - {TokenState.DELETED}:
                later = {c.card_id for c in chain[index + 1 :]}
                return chain[index].card_id, False, registering in later
            deleted = True
            if has_been_activated(chain[index]):
                break  # a successor never activated is not the card in use: look further
        return "", deleted, False

    def _with_new_token(
        self, card: Card, spec: rq.NewToken, state: TokenState
    ) -> tuple[PaymentToken, tuple[PaymentToken, ...]]:
        """The token a request describes and the card's tokens with it: refused for a number
        that fails its check digit or is the card's own (422), or one the card has (409)."""
        if not is_luhn_valid(spec.token_pan):
            raise InvalidRequest("the token number fails its check digit")
        token_ref = self.security.pan_index(spec.token_pan)
        if token_ref == card.pan_index:
            raise InvalidRequest("a token is another number than the card's own")
        now = self.clock()
        try:
            token = PaymentToken(
                token_ref=token_ref,
                last4=spec.token_pan[-4:],
                requestor_id=spec.requestor_id,
                wallet=wallet_of(spec.requestor_id, spec.wallet),
                expiry=spec.expiry,
                device=spec.device,
                state=state,
                created_at=now,
                changed_at=now,
            )
            return token, add_token(card.tokens, token)
        except TokenError as error:
            raise ConflictError(str(error)) from None

    async def token_request(self, spec: rq.TokenRequest) -> dict[str, Any]:
        """The issuer's answer to a wallet's token request (``cards.provisioning``): approved
        (the token is registered active), authentication_required (registered suspended,
        until the cardholder's one-time code is verified: then set it active) or declined (no
        token), with the reasons. Audited either way; the numbers are never kept or shown."""
        card = await self.store.find_card(self.security.pan_index(spec.pan))
        if card is None:
            raise NotFoundError("no card with this PAN")
        async with self._deciding(card.card_id):
            return await self._token_request(card, spec)

    @asynccontextmanager
    async def _deciding(self, card_id: str) -> AsyncIterator[None]:
        """One token request of a card decided at a time, across processes and machines (a
        store lease): each request read the CVV2 count before the others were audited, so 12
        sent at once were each checked (1,000 at once find the CVV2). Another one at that
        moment is refused 409, its CVV2 not checked."""
        name, owner = f"token-request:{card_id}", lease_owner(self.actor)
        if not await self.store.take_lease(name, owner, TOKEN_REQUEST_LEASE_S):
            raise ConflictError(f"a token request of card {card_id} is being decided; retry")
        try:
            yield
        finally:
            await drop_quietly(self.store, name, owner)

    async def _token_request(self, card: Card, spec: rq.TokenRequest) -> dict[str, Any]:
        product = await self.store.get_product(card.product_id)
        now = self.clock()
        failures = await self._recent_cvv2_failures(card.card_id, now)
        cvv2_matches = None
        # once locked, the CVV2 is not checked: a declined answer that still said whether it
        # was wrong (cvv2_failed or not) went on being the oracle the lock is there to stop
        if spec.cvv2 and product is not None and failures < CVV2_TRIES:
            cvv2_matches = self.security.verify_card_value(
                spec.pan, card.expiry, "000", spec.cvv2, product.cvk_name
            )
        answer = decide_token_request(
            TokenRequestFacts(
                card=card,
                expiry_matches=spec.card_expiry == card.expiry,
                cvv2_matches=cvv2_matches,
                device_score=spec.device_score,
                account_score=spec.account_score,
                now=now,
                recent_cvv2_failures=failures,
            )
        )
        result: dict[str, Any] = {
            "decision": answer.decision.value,
            "reasons": list(answer.reasons),
            "card_id": card.card_id,
            "token_ref": "",
        }
        state = answer.token_state
        if state is None:  # the masked PAN too, for the cardholder's notification
            audited = {**result, "pan": card.masked_pan}
            await self.record_audit("card.token_request", card.card_id, None, audited)
            return result
        token, tokens = self._with_new_token(card, spec, state)
        decided = {"decision": result["decision"], "reasons": result["reasons"]}
        async with self._token_held(card, token):
            await self._update(
                card, replace(card, tokens=tokens), "card.token_request", details=decided
            )
        return {**result, "token_ref": token.token_ref}

    async def _recent_cvv2_failures(self, card_id: str, now: float) -> int:
        """The card's token requests of the last day whose CVV2 failed, from its audit
        entries (newest first, page by page back to a day ago; ``CVV2_TRIES`` is enough to
        know). Every entry of the day is read, not the newest 200: declined requests without
        a CVV2 pushed the wrong ones out of reach, 3 more guesses per 200 requests. Requests
        of a card are decided one at a time (``_deciding``)."""
        failed, before_id = 0, 0
        while failed < CVV2_TRIES:
            page = await self.store.audit(
                card_id, limit=_AUDIT_PAGE, newest_first=True, before_id=before_id
            )
            for entry in page:
                if now - entry.ts >= DAY_S:
                    return failed
                if entry.action == "card.token_request" and _CVV2_FAILED in entry.after:
                    failed += 1
            if len(page) < _AUDIT_PAGE:
                break
            before_id = page[-1].audit_id
        return failed

    async def set_token_state(
        self, card_id: str, token_ref: str, spec: rq.TokenChange
    ) -> dict[str, Any]:
        """Suspend, resume or delete one of the card's tokens (a lost phone, a wallet removed):
        the next payment with it is decided by its new state. Allowed on a card in any state
        (a closed card's tokens are deleted too). Audited, with the reason."""
        card = await self._card(card_id)
        try:
            tokens = change_state(card.tokens, token_ref, TokenState(spec.state), self.clock())
        except LookupError:
            raise NotFoundError(f"card {card_id} has no token {token_ref}") from None
        except TokenError as error:
            raise ConflictError(str(error)) from None
        if tokens is card.tokens:
            return card_view(card)  # already in that state
        action = f"card.token_{spec.state}"
        return await self._update(card, replace(card, tokens=tokens), action, spec.reason)
