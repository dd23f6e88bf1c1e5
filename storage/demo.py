"""Demo data: a believable municipal government general office.

Everything here is pure data. :func:`demo_organisation` returns the JSON payload accepted by the
admin import API (departments + users) for a fictional "江州市人民政府办公室"; the output is fully
deterministic, so every call (and every machine) yields exactly the same organisation.
:func:`demo_requests` lists a few approvals the seed files, dated from today.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

DEMO_PASSWORD = "liaison2026"
_CST = ZoneInfo("Asia/Shanghai")
"""The password every demo account gets (the caller hashes it and passes the hash in)."""

EMAIL_DOMAIN = "jiangzhou.gov.cn"
ROOT_KEY = "office"
ROOT_NAME = "江州市人民政府办公室"

_SEED = 20261122

# (key, name, parent_key, headcount incl. head and deputy); parents are listed before children.
_DEPARTMENTS: tuple[tuple[str, str, str | None, int], ...] = (
    (ROOT_KEY, ROOT_NAME, None, 7),
    ("mishu1", "秘书一科", ROOT_KEY, 16),
    ("mishu2", "秘书二科", ROOT_KEY, 14),
    ("zonghe", "综合科", ROOT_KEY, 15),
    ("ducha", "督查室", ROOT_KEY, 12),
    ("xinxi", "信息科", ROOT_KEY, 12),
    ("wendian", "文电科", ROOT_KEY, 13),
    ("jiyao", "机要室", ROOT_KEY, 9),
    ("renshi", "人事科", ROOT_KEY, 11),
    ("caiwu", "财务科", ROOT_KEY, 11),
    ("fazhi", "法制科", ROOT_KEY, 10),
    ("xinfang", "信访办", ROOT_KEY, 12),
    ("jiedai", "信访接待室", "xinfang", 8),
)

# Small sub-units run by a head alone, without a deputy.
_NO_DEPUTY = frozenset({"jiedai"})

# Office leadership, in the root department (besides the director).
_DEPUTY_DIRECTORS = 3
_ROOT_STAFF_TITLES = ("主任科员", "副主任科员")

# Well-known accounts, named in the README.
ADMIN_ACCOUNT = "admin"
ADMIN_NAME = "系统管理员"
ADMIN_DEPARTMENT = "xinxi"
DIRECTOR_ACCOUNT = "chenjianguo"
DIRECTOR_NAME = "陈建国"
HEAD_ACCOUNT = "wangming"
HEAD_NAME = "王明"
HEAD_DEPARTMENT = "mishu1"
STAFF_FIXED: tuple[tuple[str, str], ...] = (("lihua", "李华"), ("zhangwei", "张伟"))
# Staff with a duty of their own (account, name, department, extra role): the 文电科 clerk who
# registers and checks official documents, the 机要室 archivist.
DOCUMENT_OFFICER = ("zhouwen", "周文", "wendian", "document_officer")
ARCHIVIST = ("sunlan", "孙兰", "jiyao", "archivist")
_DUTIES = (DOCUMENT_OFFICER, ARCHIVIST)

_FIXED_NAMES = frozenset(
    {DIRECTOR_NAME, HEAD_NAME, *(name for _, name in STAFF_FIXED), *(d[1] for d in _DUTIES)}
)
_FIXED_ACCOUNTS = frozenset(
    {
        ADMIN_ACCOUNT,
        DIRECTOR_ACCOUNT,
        HEAD_ACCOUNT,
        *(acc for acc, _ in STAFF_FIXED),
        *(d[0] for d in _DUTIES),
    }
)

# Common surnames with rough relative frequencies; polyphonic surnames (曾, 单, 解 ...) are left out
# so that the pinyin accounts come out right.
_SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 72), ("李", 70), ("张", 66), ("刘", 53), ("陈", 46), ("杨", 32), ("赵", 20),
    ("黄", 22), ("周", 18), ("吴", 18), ("徐", 14), ("孙", 14), ("胡", 13), ("朱", 12),
    ("高", 12), ("林", 11), ("何", 11), ("郭", 11), ("马", 11), ("罗", 9), ("梁", 9),
    ("宋", 8), ("郑", 8), ("谢", 7), ("韩", 7), ("唐", 7), ("冯", 7), ("于", 6), ("董", 6),
    ("萧", 5), ("程", 5), ("袁", 5), ("邓", 5), ("许", 5), ("傅", 5), ("沈", 5), ("彭", 5),
    ("吕", 4), ("苏", 4), ("卢", 4), ("蒋", 4), ("蔡", 4), ("贾", 3), ("丁", 3), ("魏", 3),
    ("薛", 3), ("叶", 3), ("阎", 3), ("余", 3), ("潘", 3), ("杜", 3), ("戴", 3), ("夏", 3),
    ("钟", 3), ("汪", 3), ("田", 3), ("任", 3), ("姜", 3), ("范", 3), ("方", 3), ("石", 2),
    ("姚", 2), ("谭", 2), ("廖", 2), ("邹", 2), ("熊", 2), ("金", 2), ("陆", 2), ("郝", 2),
    ("孔", 2), ("白", 2), ("崔", 2), ("康", 2), ("毛", 2), ("邱", 2), ("秦", 2), ("江", 2),
)  # fmt: skip

# Given-name characters (again avoiding polyphones): first and second position, by gender.
_MALE_FIRST = "建国志文海东晓俊子浩嘉明家宏振永卫立春天伟新博宇思正少小德成"
_MALE_SECOND = "伟强磊军洋勇杰涛超明刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林峰毅亮晨阳鸣杨松"
_FEMALE_FIRST = "秀丽晓雨思欣佳子美雅文海春玉慧小静梦诗婉一亚晶"
_FEMALE_SECOND = "芳娜敏静丽艳娟霞燕玲婷雪慧颖琳倩萍红梅莉丹蕾薇洁琴云欣悦怡蓉璐晶妍琪"

_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "170", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "198", "199",
)  # fmt: skip


@dataclass(frozen=True)
class DemoLogin:
    """One of the well-known demo accounts, as printed for people trying the demo."""

    account: str
    name: str
    role: str  # human description, e.g. "admin", "leader of 秘书一科", "staff in 秘书一科"


def _department_name(key: str) -> str:
    for dep_key, name, _parent, _size in _DEPARTMENTS:
        if dep_key == key:
            return name
    raise KeyError(key)


def _head_titles(name: str) -> tuple[str, str]:
    """Head and deputy titles for a unit: 科 has 科长/副科长, 室/办/中心 have 主任/副主任."""
    if name.endswith("科"):
        return "科长", "副科长"
    if name.endswith("处"):
        return "处长", "副处长"
    return "主任", "副主任"


def _rank_titles(count: int) -> list[str]:
    """Titles for the rank-and-file of a unit, most senior first."""
    if count <= 0:
        return []
    clerks = 1 if count >= 6 else 0
    principal = round(count * 0.2)
    associate = round(count * 0.3)
    members = count - clerks - principal - associate
    return (
        ["主任科员"] * principal
        + ["副主任科员"] * associate
        + ["科员"] * members
        + ["办事员"] * clerks
    )


def _pinyin_account(name: str) -> str:
    # Imported lazily: pypinyin loads sizeable dictionaries and this module must stay cheap.
    from pypinyin import lazy_pinyin

    return "".join(ch for ch in "".join(lazy_pinyin(name)).lower() if ch.isascii() and ch.isalnum())


class _Generator:
    """Deterministic source of names, accounts and phone numbers."""

    def __init__(self) -> None:
        self._rng = random.Random(_SEED)
        self._names: set[str] = set(_FIXED_NAMES)
        self._accounts: set[str] = set(_FIXED_ACCOUNTS)
        self._phones: set[str] = set()
        self._surnames = [s for s, _ in _SURNAMES]
        self._weights = [w for _, w in _SURNAMES]

    def _given_name(self) -> str:
        rng = self._rng
        if rng.random() < 0.5:
            first, second = _MALE_FIRST, _MALE_SECOND
        else:
            first, second = _FEMALE_FIRST, _FEMALE_SECOND
        if rng.random() < 0.3:
            return rng.choice(second)
        a, b = rng.choice(first), rng.choice(second)
        return a + b if a != b else a

    def person(self) -> tuple[str, str]:
        """A fresh (name, account) pair: no duplicate names, never clashing with fixed accounts."""
        while True:
            surname = self._rng.choices(self._surnames, self._weights)[0]
            name = surname + self._given_name()
            if name in self._names:
                continue
            base = _pinyin_account(name)
            if not base or base in _FIXED_ACCOUNTS:
                continue
            self._names.add(name)
            return name, self._claim_account(base)

    def _claim_account(self, base: str) -> str:
        account, n = base, 2
        while account in self._accounts:
            account, n = f"{base}{n}", n + 1
        self._accounts.add(account)
        return account

    def phone(self) -> str:
        while True:
            number = self._rng.choice(_MOBILE_PREFIXES) + f"{self._rng.randrange(10**8):08d}"
            if number not in self._phones:
                self._phones.add(number)
                return number


def demo_organisation(password_hash: str) -> dict[str, Any]:
    """Return the admin-import payload for the demo office.

    Shape: ``{"departments": [{key, name, parent_key?}], "users": [{account, name,
    department_key, title, phone, email, password_hash, roles, supervisor_account?}]}``.
    Every user gets ``password_hash`` (a precomputed hash of :data:`DEMO_PASSWORD`). Parents and
    supervisors always appear before the entries that refer to them.
    """
    gen = _Generator()
    departments: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = []

    def add_user(
        account: str,
        name: str,
        department: str,
        title: str,
        roles: list[str],
        supervisor: str | None,
    ) -> None:
        user: dict[str, Any] = {
            "account": account,
            "name": name,
            "department_key": department,
            "title": title,
            "phone": gen.phone(),
            "email": f"{account}@{EMAIL_DOMAIN}",
            "password_hash": password_hash,
            "roles": roles,
        }
        if supervisor is not None:
            user["supervisor_account"] = supervisor
        users.append(user)

    for key, name, parent, _size in _DEPARTMENTS:
        dep: dict[str, Any] = {"key": key, "name": name}
        if parent is not None:
            dep["parent_key"] = parent
        departments.append(dep)

    # Office leadership: the director, deputy directors and the secretary-general.
    add_user(DIRECTOR_ACCOUNT, DIRECTOR_NAME, ROOT_KEY, "主任", ["staff", "leader"], None)
    deputies: list[str] = []
    for _ in range(_DEPUTY_DIRECTORS):
        name, account = gen.person()
        add_user(account, name, ROOT_KEY, "副主任", ["staff", "leader"], DIRECTOR_ACCOUNT)
        deputies.append(account)
    name, account = gen.person()
    add_user(account, name, ROOT_KEY, "秘书长", ["staff", "leader"], DIRECTOR_ACCOUNT)
    for title in _ROOT_STAFF_TITLES:
        name, account = gen.person()
        add_user(account, name, ROOT_KEY, title, ["staff"], DIRECTOR_ACCOUNT)

    heads: dict[str, str] = {ROOT_KEY: DIRECTOR_ACCOUNT}
    top_level = 0
    for key, dep_name, parent, size in _DEPARTMENTS:
        if parent is None:
            continue
        head_title, deputy_title = _head_titles(dep_name)
        if parent == ROOT_KEY:
            # Each deputy director oversees (分管) a share of the departments.
            head_supervisor = deputies[top_level % len(deputies)]
            top_level += 1
        else:
            head_supervisor = heads[parent]

        if key == HEAD_DEPARTMENT:
            head_name, head_account = HEAD_NAME, HEAD_ACCOUNT
        else:
            head_name, head_account = gen.person()
        add_user(head_account, head_name, key, head_title, ["staff", "leader"], head_supervisor)
        heads[key] = head_account

        remaining = size - 1
        if key not in _NO_DEPUTY:
            name, account = gen.person()
            add_user(account, name, key, deputy_title, ["staff"], head_account)
            remaining -= 1

        fixed: list[tuple[str, str, list[str]]] = (
            [(a, n, []) for a, n in STAFF_FIXED] if key == HEAD_DEPARTMENT else []
        )
        fixed += [(a, n, [role]) for a, n, k, role in _DUTIES if k == key]
        for title in _rank_titles(remaining):
            roles = ["staff"]
            if title == "科员" and fixed:
                account, name, duty = fixed.pop(0)
                roles += duty
            else:
                name, account = gen.person()
            add_user(account, name, key, title, roles, head_account)
        if fixed:  # pragma: no cover - guards the headcount table above
            raise AssertionError(f"no room for fixed accounts in {key}")

        if key == ADMIN_DEPARTMENT:
            add_user(ADMIN_ACCOUNT, ADMIN_NAME, key, "系统管理员", ["staff", "admin"], head_account)

    return {"departments": departments, "users": users}


def demo_logins() -> list[DemoLogin]:
    """The handful of well-known accounts printed for people trying the demo."""
    head_dep = _department_name(HEAD_DEPARTMENT)
    return [
        DemoLogin(ADMIN_ACCOUNT, ADMIN_NAME, f"admin (in {_department_name(ADMIN_DEPARTMENT)})"),
        DemoLogin(DIRECTOR_ACCOUNT, DIRECTOR_NAME, f"director (主任) of {ROOT_NAME}, leader"),
        DemoLogin(HEAD_ACCOUNT, HEAD_NAME, f"leader of {head_dep}"),
        *(DemoLogin(account, name, f"staff in {head_dep}") for account, name in STAFF_FIXED),
        DemoLogin(
            DOCUMENT_OFFICER[0],
            DOCUMENT_OFFICER[1],
            f"document officer (公文) in {_department_name(DOCUMENT_OFFICER[2])}",
        ),
        DemoLogin(
            ARCHIVIST[0], ARCHIVIST[1], f"archivist (档案) in {_department_name(ARCHIVIST[2])}"
        ),
    ]


# --- approvals ------------------------------------------------------------------------------------
class DemoRequest(NamedTuple):
    """A request the demo files (applicant, definition, form by the days from today), and what
    its approvers then do (account, action, comment), in order."""

    key: str
    applicant: str
    form: dict[str, Any]
    acts: tuple[tuple[str, str, str], ...]
    picked: tuple[str, ...] = ()


def _at(days: float, hour: int = 9) -> str:
    day = datetime.now(UTC).astimezone(_CST).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=days)).isoformat()


def demo_requests() -> list[DemoRequest]:
    """A few running and finished approvals, so the demo's 审批 area has content."""
    return [
        DemoRequest(
            "leave",
            "lihua",
            {
                "type": "年休假",
                "start": _at(7),
                "end": _at(9, 18),
                "days": 3,
                "reason": "回老家探亲",
            },
            (("wangming", "approve", "同意，注意交接工作。"),),
        ),
        DemoRequest(
            "trip",
            "zhangwei",
            {
                "destination": "省城",
                "start": _at(3),
                "end": _at(5, 18),
                "days": 3,
                "budget": 2400,
                "reason": "参加全省政务信息化培训",
            },
            (),
        ),
        DemoRequest(
            "expense",
            "lihua",
            {"amount": 860, "category": "办公用品", "reason": "购买打印纸和硒鼓"},
            (),
        ),
        DemoRequest(
            "expense",
            "zhangwei",
            {"amount": 12800, "category": "差旅费", "reason": "赴京调研往返机票及住宿"},
            (("wangming", "reject", "超出年度预算，请压缩后重报。"),),
        ),
        DemoRequest(
            "vehicle",
            "wangming",
            {
                "start": _at(1, 8),
                "end": _at(1, 17),
                "destination": "江州经济开发区",
                "passengers": 4,
                "reason": "陪同市领导调研重点项目",
            },
            (),
        ),
    ]


class DemoCommand(NamedTuple):
    """A command the seed sends as someone (accounts stand where ids go; `{account}` values
    in `people` fields are turned into ids)."""

    account: str
    name: str
    payload: dict[str, Any]
    people: tuple[str, ...] = ()  # the payload field that lists accounts


def demo_commands() -> list[DemoCommand]:
    """Tasks (交办) and schedule entries (日程) for the demo, dated from today."""
    return [
        DemoCommand(
            "wangming",
            "task.assign",
            {
                "title": "起草2026年度工作总结",
                "body": "按市政府办统一格式，月底前交初稿。",
                "assignees": ["lihua", "zhangwei"],
                "due_at": _at(10, 18),
                "urgency": "normal",
                "client_msg_id": "demo-task-1",
            },
            ("assignees",),
        ),
        DemoCommand(
            "chenjianguo",
            "task.assign",
            {
                "title": "核对全市应急值班表",
                "assignees": ["wangming"],
                "due_at": _at(1, 12),
                "urgency": "urgent",
                "client_msg_id": "demo-task-2",
            },
            ("assignees",),
        ),
        DemoCommand(
            "chenjianguo",
            "schedule.create",
            {
                "title": "市政府常务会议",
                "starts_at": _at(2, 9),
                "ends_at": _at(2, 11),
                "location": "市政府一号会议室",
                "visibility": "public",
                "attendees": ["wangming"],
                "client_msg_id": "demo-schedule-1",
            },
            ("attendees",),
        ),
        DemoCommand(
            "wangming",
            "schedule.create",
            {
                "title": "秘书一科科务会",
                "starts_at": _at(1, 15),
                "ends_at": _at(1, 16),
                "location": "302会议室",
                "visibility": "department",
                "attendees": ["lihua", "zhangwei"],
                "client_msg_id": "demo-schedule-2",
            },
            ("attendees",),
        ),
    ]


# --- the file library -----------------------------------------------------------------------------
class DemoFolder(NamedTuple):
    """A top folder of the demo's library, made by `owner`: who may do what (`everyone`: read
    for all staff; departments by key and roles, each with perms), and its documents as
    (file name, title, text)."""

    name: str
    owner: str
    everyone: tuple[str, ...]
    departments: tuple[tuple[str, tuple[str, ...]], ...]
    roles: tuple[tuple[str, tuple[str, ...]], ...]
    docs: tuple[tuple[str, str, str], ...]
    below: tuple[DemoFolder, ...] = ()


def demo_library() -> list[DemoFolder]:
    """Folders with permissions and documents in Chinese, so the 文件库 and its search have
    something to show: rules everyone reads, minutes for the leaders, finance for 财务科."""
    return [
        DemoFolder(
            "规章制度",
            ADMIN_ACCOUNT,
            ("read",),
            (("zonghe", ("write",)),),
            (),
            (
                (
                    "公文处理办法.txt",
                    "江州市人民政府办公室公文处理办法",
                    "第一条 为规范本机关公文处理工作，提高公文处理的质量和效率，制定本办法。\n"
                    "第二条 公文处理包括发文办理、收文办理和公文归档。发文须经部门负责人核稿、"
                    "办公室审核、领导签发，编号格式为江政办〔年份〕序号号。\n"
                    "第三条 收文由文电科登记，经领导批示后分送承办部门办理，办理结果及时反馈。",
                ),
                (
                    "请休假管理规定.txt",
                    "机关工作人员请休假管理规定",
                    "工作人员请假三天以内由科室负责人审批，三天以上由分管领导审批。"
                    "年休假应提前一周申请，病假须附医院证明。请假期间在系统中标明去向。",
                ),
                (
                    "公务用车管理办法.txt",
                    "公务用车管理办法",
                    "公务用车实行统一管理、集中调度。用车须提前一天在系统中提交用车申请，"
                    "注明事由、目的地和乘车人数，由车辆管理员派车。",
                ),
            ),
            (
                DemoFolder(
                    "财务制度",
                    ADMIN_ACCOUNT,
                    (),
                    (),
                    (),
                    (
                        (
                            "差旅费管理办法.txt",
                            "差旅费管理办法",
                            "出差人员应当按规定等级乘坐交通工具，住宿费在标准限额内凭票据报销。"
                            "差旅费报销须在返回后十个工作日内办理，超出年度预算的不予报销。",
                        ),
                    ),
                ),
            ),
        ),
        DemoFolder(
            "会议纪要",
            DIRECTOR_ACCOUNT,
            (),
            ((ROOT_KEY, ("read",)),),
            (("leader", ("write",)),),
            (
                (
                    "主任办公会纪要.txt",
                    "2026年第十二次主任办公会议纪要",
                    "会议研究了年度预算执行情况、全市应急值班安排和政务信息化建设。"
                    "会议要求各科室于月底前报送年度工作总结，财务科牵头做好年度预算调整。",
                ),
            ),
        ),
        DemoFolder(
            "财务资料",
            DIRECTOR_ACCOUNT,
            (),
            (("caiwu", ("write",)),),
            (("leader", ("read",)),),
            (
                (
                    "年度预算报告.txt",
                    "2026年度预算报告",
                    "本年度部门预算收入合计三千二百万元，支出合计三千一百五十万元。"
                    "其中基本支出两千四百万元，项目支出七百五十万元。预算执行率百分之九十二。",
                ),
            ),
        ),
    ]


# --- official documents and the archive -------------------------------------------------------------
DOCUMENT_PREFIX = "江政办"


class DemoDocument(NamedTuple):
    """A document the demo issues (`issue`) or registers (`receive`) as `account`, with one
    text file; its approval then taken to the end by whoever holds each step, with `comment`
    (for a received one: the leader's 批示)."""

    kind: str
    account: str
    title: str
    text: str
    departments: tuple[str, ...]
    leader: str
    comment: str
    from_org: str = ""


def demo_documents() -> list[DemoDocument]:
    return [
        DemoDocument(
            "issue",
            HEAD_ACCOUNT,
            "关于做好2027年元旦春节期间值班工作的通知",
            "各科室：\n为确保元旦、春节期间各项工作正常运转，现就值班工作通知如下：一、实行领导带班和"
            "干部值班制度，值班人员须二十四小时在岗；二、遇有重大突发事件，及时报告，不得迟报漏报；"
            "三、值班表于12月20日前报办公室。",
            (ROOT_KEY,),
            DIRECTOR_ACCOUNT,
            "同意印发。",
        ),
        DemoDocument(
            "receive",
            DOCUMENT_OFFICER[0],
            "关于下达2027年度部门预算控制数的通知",
            "市政府办公室：\n根据市人大批准的预算，现将你单位2027年度部门预算控制数下达给你们，"
            "请严格按照控制数编制部门预算，于一月十日前报送市财政局。",
            ("caiwu", "zonghe"),
            DIRECTOR_ACCOUNT,
            "请财务科牵头，综合科配合，按时报送。",
            from_org="江州市财政局",
        ),
    ]


class DemoRecord(NamedTuple):
    """A record the archivist files by hand (older years' papers)."""

    title: str
    year: int
    retention: str
    text: str


def demo_records() -> list[DemoRecord]:
    return [
        DemoRecord(
            "江州市人民政府办公室2025年度工作总结",
            2025,
            "Y",
            "2025年，市政府办公室围绕中心、服务大局，在文电运转、督查督办、政务信息等方面取得新进展。",
        ),
        DemoRecord(
            "2024年度机关财务决算报告",
            2024,
            "D30",
            "2024年度机关收入合计两千九百万元，支出合计两千八百六十万元，年末结余四十万元。",
        ),
    ]
