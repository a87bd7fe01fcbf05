"""The simulator's requests, read back by an independent peer (``iso_peers``) in every dialect."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iso_peers import peer_decode, peer_encode

from authhost.cards.luhn import luhn_check_digit
from authhost.iso.codec import decode_message, encode_request
from authhost.iso.dialects import DIALECTS, get_dialect
from authhost.iso.messages import AvsData
from authhost.security import emv
from authhost.security.cavv import check_cavv
from authhost.security.dukpt import tdes_pin_key
from authhost.security.pinblock import decrypt_pin_block
from simulator.builder import NETWORKS, Entry, Kind, Network, RequestBuilder, Terminal
from simulator.chip_counters import ChipCounters
from simulator.demo_cards import SimCard
from simulator.mixes import authorisations
from simulator.wire import ResponseReader, Template

ZPK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # test key
BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # the ANSI X9.24 test BDK
PAN = "476173000000001" + luhn_check_digit("476173000000001")
CARD = SimCard(
    pan=PAN, expiry="2812", service_code="201", cvv2="123", track2=f"{PAN}=28122019990000",
    pin="1234", state="active", account="acc", currency="978", available=1000,
)  # fmt: skip


def decoded(fields: dict, dialect: str) -> dict:
    return peer_decode(encode_request(fields, get_dialect(dialect)), dialect)


def pin_block(doc: dict, dialect: str) -> bytes:
    value = doc["52"]
    return value if isinstance(value, bytes) else bytes.fromhex(value)


builder = RequestBuilder(Terminal(), zpk=ZPK, bdk=BDK)
CASES = [
    ("chip purchase with PIN", builder.financial(Kind.PURCHASE, CARD, 1250, pin="1234"),
     "0100", "000000"),
    ("contactless purchase", builder.financial(Kind.PURCHASE, CARD, 900, entry=Entry.CONTACTLESS),
     "0100", "000000"),
    ("e-commerce with CVV2", builder.financial(Kind.PURCHASE, CARD, 4999, entry=Entry.ECOMMERCE),
     "0100", "000000"),
    ("cash withdrawal", builder.financial(Kind.CASH, CARD, 10000, pin="1234"), "0200", "010000"),
    ("balance inquiry", builder.financial(Kind.BALANCE, CARD, 0, pin="1234"), "0100", "310000"),
    ("refund", builder.financial(Kind.REFUND, CARD, 500), "0200", "200000"),
    ("advice", builder.financial(Kind.ADVICE, CARD, 700), "0120", "000000"),
]  # fmt: skip


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize(("fields", "mti", "processing"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_financial_requests_decode_independently(dialect, fields, mti, processing):
    doc = decoded(fields, dialect)
    assert doc["t"] == mti
    assert doc["3"] == processing
    assert doc["4"] == fields["4"] and len(doc["4"]) == 12
    assert doc["11"] == fields["11"] and doc["37"] == fields["37"]
    assert doc.get("2", doc.get("35", "")[:16]) == PAN
    assert doc["49"] == "978"
    if "52" in fields:
        assert decrypt_pin_block(ZPK, pin_block(doc, dialect), PAN) == "1234"
    if fields["22"] == "812":
        assert doc["48"] == "9203123" and doc["14"] == "2812" and doc["25"] == "59"
        assert "35" not in doc
    else:
        assert doc["35"].startswith(PAN + "=2812201")


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("how", ["authenticated", "attempted", "exempt", "none"])
def test_a_web_purchase_says_how_its_cardholder_was_authenticated(dialect, how):
    fields = builder.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE,
                               authentication=how)  # fmt: skip
    request = decode_message(encode_request(fields, get_dialect(dialect)), get_dialect(dialect))
    assert request.authentication == how and request.cvv2 == "123"
    with pytest.raises(ValueError, match="for e-commerce"):
        builder.financial(Kind.PURCHASE, CARD, 4000, authentication=how)  # chip: no


CAVV_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # a test ACS key


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize(
    ("how", "kind", "result"),
    [
        ("authenticated", "genuine", "2"),
        ("attempted", "genuine", "3"),
        ("authenticated", "forged", "1"),
        ("attempted", "forged", "4"),
        ("authenticated", "none", None),
        ("exempt", "genuine", None),  # nothing to prove: no value
    ],
)
def test_a_3ds_claim_comes_with_the_acs_value(dialect, how, kind, result):
    acs = RequestBuilder(Terminal(), zpk=ZPK, cavv_key=CAVV_KEY)
    fields = acs.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE,
                           authentication=how, cavv=kind)  # fmt: skip
    request = decode_message(encode_request(fields, get_dialect(dialect)), get_dialect(dialect))
    assert request.authentication == how
    value = request.authentication_value
    assert (None if value is None else check_cavv(CAVV_KEY, PAN, value).result) == result
    with pytest.raises(ValueError, match="cavv is one of"):
        acs.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE, cavv="maybe")


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("how", ["authenticated", "attempted", "none", None])
def test_the_visa_way_the_host_reads_what_field_48_would_say(dialect, how):
    """``--network visa``: the CVV2 in 126.10, the claim in 60.8, the CAVV in 126.9 and the
    address in 123, read by the host into what field 48's layout gives it; nothing in 48."""
    acs = RequestBuilder(Terminal(), zpk=ZPK, cavv_key=CAVV_KEY)
    address = AvsData("EC1A 1BB", "12 Lovelace Street")
    codec = get_dialect(dialect, visa_fields=True)
    both = {}
    for network in NETWORKS:
        fields = acs.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE,
                               authentication=how, avs=address, network=network)  # fmt: skip
        both[network] = (fields, decode_message(encode_request(fields, codec), codec))
    (visa, read), (mastercard, expected) = both[Network.VISA], both[Network.MASTERCARD]
    assert "48" not in visa and "120" not in visa and ("60" in visa) == (how is not None)
    assert not {"60", "123", "126"} & set(mastercard)
    assert (read.cvv2, read.authentication, read.avs) == ("123", how or "", address)
    assert (expected.cvv2, expected.authentication, expected.avs) == ("123", how or "", address)
    value = read.authentication_value  # a CAVV of its own (a new authentication), as valid
    assert (None if value is None else check_cavv(CAVV_KEY, PAN, value).result) == (
        {"authenticated": "2", "attempted": "3"}.get(how or "")
    )


def test_visa_has_no_exemption_in_its_e_commerce_indicator():
    with pytest.raises(ValueError, match="60.8"):
        builder.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE,
                          authentication="exempt", network=Network.VISA)  # fmt: skip
    with pytest.raises(ValueError, match="network is one of"):
        builder.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE, network="amex")
    # a chip purchase has nothing card-not-present to move: said, not silently sent as it is
    with pytest.raises(ValueError, match="give --entry ecommerce"):
        builder.financial(Kind.PURCHASE, CARD, 4000, network=Network.VISA)


@pytest.mark.parametrize("entry", [Entry.CHIP, Entry.CONTACTLESS, Entry.STRIPE])
@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_a_cvv2_sent_at_the_till_travels_in_126_10_beside_track_2(dialect, entry):
    """``--network visa --cvv2 ...`` with a card read at the till: the CVV2 in 126.10 (present,
    its result asked for) and the track 2 as ever; the host reads both (and answers P)."""
    fields = builder.financial(Kind.PURCHASE, CARD, 4000, entry=entry, network=Network.VISA,
                               present_cvv2=True)  # fmt: skip
    assert fields["35"] == CARD.track2 and fields["126"] == "0040000000000000" + "11 123"
    assert not {"2", "48", "60", "123"} & set(fields)
    codec = get_dialect(dialect, visa_fields=True)
    read = decode_message(encode_request(fields, codec), codec)
    assert read.cvv2 == "123" and read.track2 == CARD.track2 and read.channel != "ecommerce"
    assert "126" not in builder.financial(Kind.PURCHASE, CARD, 4000, entry=entry)


def test_a_cvv2_at_the_till_is_for_visas_layout_and_a_card_read_there():
    for network, entry in ((Network.MASTERCARD, Entry.CHIP), (Network.VISA, Entry.ECOMMERCE)):
        with pytest.raises(ValueError, match="126.10"):
            builder.financial(Kind.PURCHASE, CARD, 4000, entry=entry, network=network,
                              present_cvv2=True)  # fmt: skip
    with pytest.raises(ValueError, match="126.10"):  # --cvv2 none: nothing to send
        builder.financial(Kind.PURCHASE, dataclasses.replace(CARD, cvv2=""), 4000,
                          network=Network.VISA, present_cvv2=True)  # fmt: skip


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize(("indicator", "cvv2"), [("M103", None), ("C101", "123")])
def test_a_card_on_file_says_who_initiated_it(dialect, indicator, cvv2):
    fields = builder.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE,
                               stored_credential=indicator)  # fmt: skip
    request = decode_message(encode_request(fields, get_dialect(dialect)), get_dialect(dialect))
    assert request.stored_credential == indicator and request.cvv2 == cvv2
    assert request.merchant_initiated is (indicator[0] == "M")
    with pytest.raises(ValueError, match="stored credential"):
        builder.financial(Kind.PURCHASE, CARD, 4000, stored_credential=indicator)  # chip: no


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_dukpt_pin_carries_a_fresh_ksn_in_field_53(dialect):
    dukpt = RequestBuilder(Terminal(pin_keying="dukpt"), bdk=BDK)
    first = decoded(dukpt.financial(Kind.PURCHASE, CARD, 100, pin="4321"), dialect)
    second = decoded(dukpt.financial(Kind.PURCHASE, CARD, 100, pin="4321"), dialect)
    assert first["53"] != second["53"] and len(first["53"]) == 20
    key = tdes_pin_key(BDK, first["53"])
    assert decrypt_pin_block(key, pin_block(first, dialect), PAN) == "4321"


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("advice", [False, True], ids=["0400", "0420"])
def test_reversal_points_at_its_original_in_field_90(dialect, advice):
    original = builder.financial(Kind.PURCHASE, CARD, 2500, pin="1234")
    doc = decoded(builder.reversal(original, advice=advice), dialect)
    assert doc["t"] == ("0420" if advice else "0400")
    assert doc["4"] == original["4"]
    assert doc["90"][:4] == "0100" and doc["90"][4:10] == original["11"]
    assert doc["90"][10:20] == original["7"]
    assert doc["90"][20:31] == original["32"].rjust(11, "0")
    assert doc["11"] != original["11"]
    assert "52" not in doc


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_completion_carries_the_final_amount_and_names_the_preauthorisation(dialect):
    original = builder.financial(Kind.PURCHASE, CARD, 20_000)
    doc = decoded(builder.completion(original, 15_000), dialect)
    assert doc["t"] == "0220" and doc["4"] == f"{15_000:012d}"
    assert doc["90"][:4] == "0100" and doc["90"][4:10] == original["11"]
    assert doc["90"][10:20] == original["7"]
    assert doc["11"] != original["11"] and doc["35"] == original["35"]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_split_completions_are_numbered_and_add_up_to_the_final_amount(dialect):
    original = builder.financial(Kind.PURCHASE, CARD, 20_000)
    docs = [decoded(f, dialect) for f in builder.split_completions(original, 10_001, 3)]
    assert [d["48"] for d in docs] == ["62040103", "62040203", "62040303"]
    assert sum(int(d["4"]) for d in docs) == 10_001
    assert len({d["11"] for d in docs}) == 3 and {d["90"] for d in docs} == {docs[0]["90"]}
    (single,) = builder.split_completions(original, 10_001, 1)
    assert "48" not in single and single["4"] == f"{10_001:012d}"


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_an_incremental_names_its_preauthorisation_without_the_cards_reading(dialect):
    original = builder.financial(Kind.PURCHASE, CARD, 20_000)
    doc = decoded(builder.incremental(original, CARD, 5_000), dialect)
    assert doc["t"] == "0100" and doc["4"] == f"{5_000:012d}"
    assert doc["90"][:4] == "0100" and doc["90"][4:10] == original["11"]
    assert doc["2"] == CARD.pan and doc["14"] == CARD.expiry and doc["22"] == "102"
    assert "35" not in doc and "55" not in doc and doc["11"] != original["11"]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize(("kind", "code"), [(Kind.ECHO, "301"), (Kind.SIGN_ON, "001"),
                                            (Kind.SIGN_OFF, "002")])  # fmt: skip
def test_network_management(dialect, kind, code):
    doc = decoded(builder.network(kind), dialect)
    assert doc["t"] == "0800" and doc["70"] == code and len(doc["11"]) == 6


def test_stans_and_rrns_are_unique_per_builder():
    fresh = RequestBuilder(Terminal(), zpk=ZPK)
    requests = [fresh.financial(Kind.PURCHASE, CARD, 1) for _ in range(50)]
    assert len({r["11"] for r in requests}) == 50
    assert len({r["37"] for r in requests}) == 50


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_templates_patch_stan_and_rrn_and_the_reader_finds_them(dialect):
    d = get_dialect(dialect)
    reader = ResponseReader(d)
    for fields in authorisations(_demo()) + [builder.network()]:
        template = Template(fields, d)
        body = bytes(template.body(b"000777", b"912345678901"))
        doc = peer_decode(body, dialect)
        assert doc["11"] == "000777"
        stan, rrn, code = reader.read(body)
        assert stan == b"000777" and code == b""
        assert rrn == (b"912345678901" if "37" in fields else b"")
        assert doc.get("37", "912345678901") == "912345678901"


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_reader_reads_the_response_code_of_an_answer(dialect):
    answer = {"t": "0110", "3": "000000", "4": "000000000100", "7": "1125101010", "11": "000042",
              "32": "123456", "37": "900000000042", "38": "A1B2C3", "39": "51",
              "41": "SIMT0001"}  # fmt: skip
    body = peer_encode(dict(answer), dialect)
    assert ResponseReader(get_dialect(dialect)).read(bytes(body)) == (
        b"000042",
        b"900000000042",
        b"51",
    )


def _demo():
    from simulator.demo_cards import DemoFile

    return DemoFile((CARD,), ZPK, BDK)


# fields a response may carry before 39, with a strategy for valid values of each
_ANSWER_FIELDS = {
    "2": st.from_regex(r"\A[0-9]{12,19}\Z"),
    "3": st.from_regex(r"\A[0-9]{6}\Z"),
    "4": st.from_regex(r"\A[0-9]{12}\Z"),
    "7": st.from_regex(r"\A[0-9]{10}\Z"),
    "11": st.from_regex(r"\A[0-9]{6}\Z"),
    "12": st.from_regex(r"\A[0-9]{6}\Z"),
    "14": st.from_regex(r"\A[0-9]{4}\Z"),
    "22": st.from_regex(r"\A[0-9]{3}\Z"),
    "32": st.from_regex(r"\A[0-9]{1,11}\Z"),
    "35": st.from_regex(r"\A[0-9]{16}=[0-9]{12}\Z"),
    "37": st.from_regex(r"\A[0-9A-Z]{12}\Z"),
    "38": st.from_regex(r"\A[0-9A-Z]{6}\Z"),
    "39": st.sampled_from(["00", "05", "51", "55", "91", "N7"]),
    "41": st.from_regex(r"\A[0-9A-Z]{8}\Z"),
    "70": st.sampled_from(["001", "301"]),
}


@settings(max_examples=60, deadline=None)
@given(
    dialect=st.sampled_from(sorted(DIALECTS)),
    present=st.sets(st.sampled_from(sorted(_ANSWER_FIELDS, key=int)), min_size=1),
    data=st.data(),
)
def test_fast_reader_agrees_with_pyiso8583(dialect, present, data):
    """The load generator's reader finds 11, 37 and 39 wherever pyiso8583 puts them."""
    doc = {"t": "0110", **{n: data.draw(_ANSWER_FIELDS[n], label=n) for n in present}}
    body = peer_encode(dict(doc), dialect)
    stan, rrn, code = ResponseReader(get_dialect(dialect)).read(bytes(body))
    assert stan.decode() == doc.get("11", "")
    assert rrn.decode() == doc.get("37", "")
    assert code.decode() == doc.get("39", "")


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("cvn", [10, 16, 17, 18, 20, 21, 22])
def test_chip_reads_carry_a_genuine_arqc_in_field_55(dialect, cvn):
    imk = bytes.fromhex("AA" * 16)  # test key
    chip_card = dataclasses.replace(CARD, chip_cvn=cvn)
    chip = RequestBuilder(Terminal(), zpk=ZPK, imk_ac=imk)
    doc = decoded(chip.financial(Kind.PURCHASE, chip_card, 1250), dialect)
    value = doc["55"]
    tags = emv.parse_tlv(value if isinstance(value, bytes) else bytes.fromhex(value))
    assert tags["9F02"] == bytes.fromhex("000000001250") and tags["5F2A"] == bytes.fromhex("0978")
    assert emv.check_arqc(imk, PAN, "00", tags, cvn).valid
    again = chip.financial(Kind.PURCHASE, chip_card, 1250)
    assert again["55"] != chip.financial(Kind.PURCHASE, chip_card, 1250)["55"]  # new ATC, UN
    assert "55" not in chip.financial(Kind.PURCHASE, chip_card, 1250, entry=Entry.ECOMMERCE)
    assert "55" not in chip.financial(Kind.PURCHASE, CARD, 1250)  # a product not checking
    assert "55" not in builder.financial(Kind.PURCHASE, chip_card, 1250)  # no key: no chip data


def test_chip_counters_go_on_where_the_last_session_stopped(tmp_path):
    path = tmp_path / "cards.json.atc"
    first = ChipCounters(path)
    start = first.next(PAN)
    assert first.next(PAN) == start + 1
    counters = ChipCounters(path)  # a new session
    counters.next("476173000000002" + luhn_check_digit("476173000000002"))  # another card
    assert counters.next(PAN) == start + 2  # counts on, apart from the other card
    card = hashlib.sha256(PAN.encode()).hexdigest()[:16]
    path.write_text(json.dumps({card: 0xFFFF}))
    assert ChipCounters(path).next(PAN) == 1  # the counter wraps after 65535
    assert PAN not in path.read_text()  # the file names cards by a hash, not by their PAN
    path.write_text("not json")
    assert 1 <= ChipCounters(path).next(PAN) <= 0xFFFF  # unreadable: from the clock again
    assert json.loads(path.read_text())  # and the file is whole again


@pytest.mark.parametrize("cvn", [10, 16, 18, 21])
def test_the_simulated_chip_tells_a_genuine_answer_from_a_forged_one(cvn):
    from authhost.security import emv_scripts
    from simulator.chip_checks import ChipChecker

    imk_ac, imk_smi = bytes.fromhex("AB" * 16), bytes.fromhex("CD" * 16)
    chip_card = dataclasses.replace(CARD, chip_cvn=cvn)
    sent = RequestBuilder(Terminal(), zpk=ZPK, imk_ac=imk_ac).financial(
        Kind.PURCHASE, chip_card, 1250
    )["55"]
    tags = emv.parse_tlv(sent)
    arpc = emv.check_arqc(imk_ac, PAN, "00", tags, cvn).issuer_authentication_data(True, "00")
    script = emv_scripts.issuer_script(imk_smi, PAN, "00", cvn, tags["9F36"], tags["9F26"],
                                       [emv_scripts.ScriptCommand.PIN_UNBLOCK])  # fmt: skip
    checker = ChipChecker(PAN, cvn, imk_ac, imk_smi)
    genuine = emv.encode_tlv({"91": arpc}) + script
    assert checker.verdicts(sent, genuine) == [
        "the card checks the ARPC (tag 91): genuine",
        "issuer script pin_unblock: MAC good, the card obeys",
    ]
    forged_arpc = emv.encode_tlv({"91": bytes([arpc[0] ^ 1]) + arpc[1:]}) + script
    assert checker.verdicts(sent, forged_arpc)[0].endswith("FORGED")
    bad_mac = genuine[:-1] + bytes([genuine[-1] ^ 1])
    assert checker.verdicts(sent, bad_mac)[1].endswith("BAD")
    assert checker.verdicts(None, genuine) == []  # no chip data sent: nothing to check


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_mastercard_requests_carry_the_tcc_settlement_date_and_network_data(dialect):
    """``--network mastercard``: field 48 led by the transaction category code, DE 15 and DE 63
    as Mastercard's network sends them; a reversal or completion carries its original's.
    Without it, none of them (field 48 as before)."""
    codec = get_dialect(dialect)
    shop = builder.financial(Kind.PURCHASE, CARD, 4000, banknet=True)
    web = builder.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE, banknet=True)
    atm = builder.financial(Kind.CASH, CARD, 4000, pin="1234", banknet=True)
    reads = [decode_message(encode_request(f, codec), codec) for f in (shop, web, atm)]
    assert [str(r.fields["48"])[:1] for r in reads] == ["R", "T", "Z"]
    assert reads[1].cvv2 == "123"  # the subelements read after the TCC
    for fields in (shop, web, atm):
        assert len(str(fields["15"])) == 4 and str(fields["63"]).startswith("MCC")
        assert len(str(fields["63"])) == 12
    reversal = builder.reversal(shop)
    completion = builder.split_completions(shop, 3000, 2)[0]
    for derived in (reversal, completion):
        assert (derived["15"], derived["63"]) == (shop["15"], shop["63"])
        assert str(derived["48"])[:1] == "R"
    plain = builder.financial(Kind.PURCHASE, CARD, 4000, entry=Entry.ECOMMERCE)
    assert not {"15", "63"} & set(plain) and str(plain["48"])[:1] == "9"
    assert "48" not in builder.reversal(builder.financial(Kind.PURCHASE, CARD, 4000))
