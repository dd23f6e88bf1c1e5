"""The organisation a run imports: bureaus (局) of sections (科) of 20–50 people, Chinese
names, phones, supervisors, and one cheap argon2id hash shared by every account."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import argon2

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍申尤毕聂柴焦向柳邢岳齐梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋植甘景薄单包司柏宁柯阮桂闵欧阳解强丛华车冉房边辜吉饶刁瞿戚丘古米池滕晋苑邬臧畅宫来嵺苟全褚廉简娄盖符奚木穆党燕郎邸冀谈姬屠连郜晏栾郁商蒙计喻揭窦迟宇敖糜鄢冷卓花艾蓝都巩稽井练仲乐虞卞封竺冼原官衣楚佟栗匡宗应台巫鞠僧桑荆谌银扬明沙薄伏岑习胥保和蔺"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强永红海燕红梅玉兰晓东雪梅丹丹春梅海波文博思远子轩梓涵一诺浩然欣怡雨桐宇航佳怡俊杰嘉怡晨阳"
SECTION_NAMES = [
    "综合科",
    "秘书科",
    "督查科",
    "信息科",
    "法规科",
    "财务科",
    "人事科",
    "计划科",
    "审批科",
    "调研科",
    "接待科",
    "档案科",
]
TITLES = ["科员", "科员", "科员", "科员", "副主任科员", "主任科员", "办事员"]


def cheap_hash(password: str) -> str:
    """argon2id with deliberately cheap parameters (1 pass, 8 KiB): 10,000 logins must not
    burn the server's CPU on hashing. Only for load-test accounts."""
    return argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(password)


@dataclass(slots=True)
class Person:
    index: int
    account: str
    name: str
    section: str  # department key
    id: int = 0  # filled in from the import's answer


@dataclass
class Org:
    prefix: str
    departments: list[dict[str, Any]]
    people: list[Person]
    sections: dict[str, list[int]]  # section key -> indexes of its people
    bureaus: dict[str, list[str]]  # bureau key -> its section keys
    top: str  # the office's key
    director: int | None = None  # index of the person at the top, if any
    dept_ids: dict[str, int] = field(default_factory=dict)

    def import_body(self, password_hash: str) -> dict[str, Any]:
        users = []
        for p in self.people:
            members = self.sections[p.section]
            lead = members[0]
            u: dict[str, Any] = {
                "account": p.account,
                "name": p.name,
                "department_key": p.section,
                "title": "科长" if p.index == lead else TITLES[p.index % len(TITLES)],
                "phone": f"139{p.index:08d}",
                "email": f"{p.account}@load.example.gov.cn",
                "password_hash": password_hash,
                "roles": ["staff", "leader"] if p.index == lead else ["staff"],
            }
            if p.index != lead:
                u["supervisor_account"] = self.people[lead].account
            users.append(u)
        # supervisors must come first or exist: leads first keeps the import order simple
        users.sort(key=lambda u: "supervisor_account" in u)
        return {"departments": self.departments, "users": users}

    def apply_ids(self, answer: dict[str, Any]) -> None:
        self.dept_ids = {k: int(v) for k, v in answer["departments"].items()}
        ids = answer["users"]
        for p in self.people:
            p.id = int(ids[p.account])


def _name(rng: random.Random) -> str:
    given = GIVEN[rng.randrange(len(GIVEN))]
    if rng.random() < 0.6:
        given += GIVEN[rng.randrange(len(GIVEN))]
    return SURNAMES[rng.randrange(len(SURNAMES))] + given


def _section_sizes(rng: random.Random, total: int, lo: int = 20, hi: int = 50) -> list[int]:
    """Sizes in [lo, hi] adding up to `total` (a smaller total is one section)."""
    sizes: list[int] = []
    left = total
    while left > 0:
        if left <= hi:
            sizes.append(left)
            break
        size = rng.randint(lo, hi)
        if 0 < left - size < lo:
            size = left - lo if left - lo >= lo else left
        sizes.append(size)
        left -= size
    return sizes


def build_org(
    users: int,
    prefix: str,
    *,
    seed: int = 1,
    bureau_sizes: list[int] | None = None,
    director: bool = False,
) -> Org:
    """`users` people in sections of 20–50 grouped into bureaus of about 8 sections, or into
    the bureaus of the sizes given (a 5,000-person bureau for the fan-out benchmark). With
    `director`, one person sits alone at the top of the office."""
    rng = random.Random(seed)
    top = f"{prefix}-office"
    departments: list[dict[str, Any]] = [{"key": top, "name": f"负载测试办公室 {prefix}"}]
    people: list[Person] = []
    sections: dict[str, list[int]] = {}
    bureaus: dict[str, list[str]] = {}
    n_staff = users - (1 if director else 0)
    if director:
        sections[top] = [0]
        people.append(Person(0, f"{prefix}_director", _name(rng), top))
    if bureau_sizes is None:
        sizes = _section_sizes(rng, n_staff)
        groups = [sizes[i : i + 8] for i in range(0, len(sizes), 8)]
    else:
        assert sum(bureau_sizes) == n_staff, "bureau sizes must add up to the staff"
        groups = [_section_sizes(rng, b) for b in bureau_sizes]
    for b, group in enumerate(groups):
        bkey = f"{prefix}-b{b}"
        departments.append({"key": bkey, "name": f"第{b + 1}局", "parent_key": top})
        bureaus[bkey] = []
        for s, size in enumerate(group):
            skey = f"{bkey}-s{s}"
            departments.append(
                {
                    "key": skey,
                    "name": f"第{b + 1}局{SECTION_NAMES[s % len(SECTION_NAMES)]}{s + 1}",
                    "parent_key": bkey,
                }
            )
            bureaus[bkey].append(skey)
            members = []
            for _ in range(size):
                i = len(people)
                people.append(Person(i, f"{prefix}_{i:05d}", _name(rng), skey))
                members.append(i)
            sections[skey] = members
    return Org(prefix, departments, people, sections, bureaus, top, 0 if director else None)
