"""Word lists for realistic seed data: Chinese and English names, places, plans."""

from __future__ import annotations

#: The most common Chinese surnames, with pinyin and a rough weight (per mille of the population).
SURNAMES = [
    ("王", "wang", 72), ("李", "li", 72), ("张", "zhang", 68), ("刘", "liu", 54), ("陈", "chen", 45),
    ("杨", "yang", 32), ("黄", "huang", 22), ("赵", "zhao", 22), ("吴", "wu", 20), ("周", "zhou", 19),
    ("徐", "xu", 13), ("孙", "sun", 12), ("马", "ma", 12), ("朱", "zhu", 11), ("胡", "hu", 10),
    ("郭", "guo", 10), ("何", "he", 9), ("高", "gao", 9), ("林", "lin", 9), ("罗", "luo", 8),
    ("郑", "zheng", 8), ("梁", "liang", 8), ("谢", "xie", 6), ("宋", "song", 6), ("唐", "tang", 6),
    ("许", "xu", 5), ("韩", "han", 5), ("冯", "feng", 5), ("邓", "deng", 5), ("曹", "cao", 5),
    ("彭", "peng", 4), ("曾", "zeng", 4), ("肖", "xiao", 4), ("田", "tian", 4), ("董", "dong", 4),
    ("袁", "yuan", 3), ("潘", "pan", 3), ("于", "yu", 3), ("蒋", "jiang", 3), ("蔡", "cai", 3),
    ("余", "yu", 3), ("杜", "du", 3), ("叶", "ye", 3), ("程", "cheng", 3), ("苏", "su", 3),
    ("魏", "wei", 3), ("吕", "lv", 3), ("丁", "ding", 3), ("任", "ren", 3), ("沈", "shen", 3),
    ("欧阳", "ouyang", 1), ("司马", "sima", 1), ("上官", "shangguan", 1), ("诸葛", "zhuge", 1),
]

#: Characters of given names, with pinyin.
GIVEN = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("玉", "yu"), ("兰", "lan"), ("建", "jian"), ("国", "guo"),
    ("文", "wen"), ("辉", "hui"), ("鹏", "peng"), ("红", "hong"), ("婷", "ting"), ("雪", "xue"), ("梅", "mei"),
    ("宇", "yu"), ("浩", "hao"), ("欣", "xin"), ("怡", "yi"), ("子", "zi"), ("涵", "han"), ("晨", "chen"),
    ("佳", "jia"), ("琪", "qi"), ("博", "bo"), ("思", "si"), ("雨", "yu"), ("轩", "xuan"), ("嘉", "jia"),
    ("俊", "jun"), ("志", "zhi"), ("海", "hai"), ("春", "chun"), ("秋", "qiu"), ("冬", "dong"), ("晓", "xiao"),
    ("东", "dong"), ("亮", "liang"), ("飞", "fei"), ("鑫", "xin"), ("斌", "bin"), ("波", "bo"), ("健", "jian"),
]

FIRST_NAMES = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
               "Elizabeth", "William", "Susan", "Richard", "Jessica", "Joseph", "Sarah", "Thomas", "Karen",
               "Emma", "Oliver", "Sophie", "Harry", "Chloe", "Jack", "Amelia", "Noah", "Olivia", "Liam",
               "Zoë", "Renée", "José", "Siobhán", "Björn"]
LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
              "Taylor", "Anderson", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris",
              "Clark", "Lewis", "Walker", "Young", "King", "Wright", "O'Brien", "O'Connor", "McDonald",
              "Müller", "García-López", "Chan", "Wong", "Lee"]

CN_COMPANY_PREFIX = ["深圳市", "广州市", "北京", "上海", "杭州", "成都", "武汉", "南京"]
CN_COMPANY_CORE = ["华信", "恒通", "鼎盛", "瑞丰", "天宇", "金桥", "新创", "宏达", "万邦", "中科"]
CN_COMPANY_KIND = ["科技有限公司", "贸易有限公司", "物流有限公司", "电子有限公司", "餐饮管理有限公司"]
EN_COMPANY_CORE = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Pearl River", "Harbour"]
EN_COMPANY_KIND = ["Trading Ltd", "Logistics Co.", "Holdings Ltd", "Imports Inc.", "Consulting LLC"]

#: (province, city, districts, landline area code without trunk 0)
CN_CITIES = [
    ("广东省", "深圳市", ["南山区", "福田区", "罗湖区", "宝安区", "龙岗区"], "755"),
    ("广东省", "广州市", ["天河区", "越秀区", "海珠区", "番禺区"], "20"),
    ("北京市", "北京市", ["朝阳区", "海淀区", "东城区", "西城区"], "10"),
    ("上海市", "上海市", ["浦东新区", "徐汇区", "静安区", "黄浦区"], "21"),
    ("浙江省", "杭州市", ["西湖区", "滨江区", "余杭区"], "571"),
    ("四川省", "成都市", ["武侯区", "锦江区", "高新区"], "28"),
]
CN_STREETS = ["科技园路", "深南大道", "人民路", "中山路", "建设路", "解放路", "滨海大道", "学府路"]
EN_STREETS = ["High Street", "Station Road", "Baker Street", "Main Street", "Church Lane", "Market Street"]
EN_CITIES = [("GB", "England", "London"), ("GB", "England", "Manchester"), ("US", "CA", "San Francisco"),
             ("US", "NY", "New York"), ("US", "MA", "Boston")]

#: Mobile prefixes that libphonenumber accepts as valid Chinese mobiles.
CN_MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                      "155", "156", "157", "158", "159", "176", "177", "178", "180", "181", "182", "183",
                      "185", "186", "187", "188", "189", "198", "199"]
US_AREAS = ["212", "415", "617", "646", "310", "206"]

EMAIL_DOMAINS_CN = ["qq.com", "163.com", "126.com", "sina.com", "foxmail.com"]
EMAIL_DOMAINS_EN = ["gmail.com", "outlook.com", "yahoo.com", "example.co.uk"]

PLANS = [("5G畅享套餐 129元", 12900), ("5G畅享套餐 199元", 19900), ("4G 大流量卡 59元", 5900),
         ("宽带 500M 包年", 10000), ("宽带 1000M 融合套餐", 16900), ("IPTV 基础包", 2500),
         ("Family Plan 199", 19900), ("Business Fiber 1G", 59900), ("International Roaming Pack", 6800)]

QUEUES = [("general", "综合服务 General", (), 0), ("billing", "账单 Billing", (("billing", 2),), 0),
          ("tech", "技术支持 Technical", (("tech", 3),), 0), ("sales", "销售 Sales", (("sales", 2),), 0),
          ("vip", "VIP 专席", (("vip", 4),), 10), ("english", "English Service", (("en", 3),), 0)]
SKILLS = ["zh", "en", "yue", "billing", "tech", "sales", "vip"]

#: The ACD configuration of the demo and of asterisk_conf/ (queues.conf, pjsip.conf): the hotline flow's
#: queues with their routing, and the two agent phones.  Only what QueueConfig sets beyond its defaults.
OFFICE_HOURS = {"tz": "Asia/Shanghai",
                "days": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}}
ACD_QUEUES: list[dict[str, object]] = [
    # first-level support and the fallback queue: anyone, in turn; callers waiting 5 minutes get a callback
    {"name": "support", "display_name": "技术支持 Support", "strategy": "round-robin", "max_wait": 300,
     "on_max_wait": "callback", "callback_spacing": 600},
    {"name": "sales", "display_name": "销售 Sales", "required_skills": (("sales", 1),), "strategy": "longest-idle",
     "no_agents": "overflow", "overflow_after": 60, "overflow_to": "support", "hours": OFFICE_HOURS},
    # the VIP line: the most skilled agent first, to support after 30 s, back to the last agent for 30 days
    {"name": "vip", "display_name": "VIP 专席", "required_skills": (("vip", 3),), "priority": 10,
     "strategy": "best-skill", "ring_seconds": 20, "overflow_after": 30, "overflow_to": "support",
     "sticky_days": 30, "callback_priority": 5},
    {"name": "billing", "display_name": "账单 Billing", "required_skills": (("billing", 2),),
     "strategy": "fewest-calls", "relax_after": 60, "relaxed_proficiency": 1, "overflow_after": 120,
     "overflow_to": "support"},
    {"name": "complaints", "display_name": "投诉 Complaints", "required_skills": (("complaints", 2),),
     "priority": 5, "strategy": "longest-idle", "wrap_up_seconds": 30, "max_wait": 180,
     "on_max_wait": "callback", "callback_priority": 0, "sticky_days": 7},
]
#: The group every seeded queue and agent is in, and the seeded supervisors watch: a supervisor sees the queues
#: and agents of their groups (agent_desktop/scope.py), so the demo's wallboard shows everything.
DEMO_GROUP = "hotline"
#: (login, name, interface, skills, queues with penalties)
ACD_AGENTS = [
    ("6001", "李娜 Li Na", "PJSIP/6001", (("billing", 4), ("complaints", 3), ("en", 3), ("technical", 3),
                                          ("vip", 4), ("zh", 5)),
     (("billing", 0), ("complaints", 0), ("support", 0), ("vip", 0))),
    ("6002", "John Smith", "PJSIP/6002", (("billing", 2), ("complaints", 4), ("en", 5), ("sales", 4),
                                           ("technical", 4), ("zh", 3)),
     (("billing", 1), ("complaints", 0), ("sales", 0), ("support", 0), ("vip", 1))),
]

DISPOSITIONS = [("resolved", "问题已解决 Resolved", "general", False),
                ("billing_question", "账单咨询 Billing question", "billing", False),
                ("payment_promise", "承诺缴费 Promise to pay", "billing", False),
                ("fault_reported", "故障报修 Fault reported", "tech", True),
                ("complaint", "投诉 Complaint", "general", True),
                ("sale", "成功办理 Sale", "sales", False),
                ("no_sale", "未成交 No sale", "sales", False),
                ("callback", "预约回访 Callback", "general", False),
                ("wrong_number", "打错电话 Wrong number", "general", False),
                ("info_given", "信息咨询 Information given", "general", False),
                ("transferred", "已转接 Transferred", "general", False),
                ("escalated", "升级处理 Escalated", "general", True)]

SERVICE_LINES = ["10086", "4008208820", "075588880000", "95588", "4001234567"]
#: Why an abandoned call ended.
HANGUP_CAUSES = ["originator_cancel", "originator_cancel", "normal_clearing", "no_answer"]

TICKET_SUBJECTS = {
    "complaint": ["网络信号差", "话费扣费有误", "宽带经常断线", "Rude service at store", "Overcharged on bill"],
    "consultation": ["咨询套餐变更", "国际漫游资费", "How to set up voicemail", "发票开具方式"],
    "fault": ["宽带无法上网", "光猫指示灯异常", "No dial tone", "IPTV 无信号"],
    "service_order": ["办理携号转网", "新装宽带", "Upgrade to fiber 1G", "更换 SIM 卡"],
}
NOTES = ["客户要求回电", "已解释账单明细", "VIP客户，优先处理", "Customer prefers email contact",
         "已提交工单", "Asked about roaming charges", "客户情绪激动，已安抚", "按流程核实身份"]
