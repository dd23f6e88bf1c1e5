// Every visible string goes through this dictionary. Chinese is the default; the choice is
// remembered in localStorage.
import { Store } from './store';

export type Lang = 'zh' | 'en';
const STORAGE_KEY = 'liaison.lang';

const zh = {
  'app.name': '联络',
  'app.tagline': '机关单位实时协同',

  'login.title': '登录',
  'login.account': '账号',
  'login.password': '密码',
  'login.submit': '登录',
  'login.busy': '正在登录…',
  'login.failed': '账号或密码错误',
  'login.missing': '请输入账号和密码',
  'login.hint': '使用单位统一账号登录',

  'header.logout': '退出',
  'header.notes_unread': '未读留言 {n} 条',
  'header.lang': 'English',
  'header.lang_title': 'Switch to English',

  'conn.connected': '在线',
  'conn.connecting': '连接中',
  'conn.reconnecting': '重连中',
  'conn.reconnecting_n': '重连中（第 {n} 次）',
  'conn.offline': '离线',

  'nav.label': '功能',
  'nav.board': '人员去向',
  'nav.pager': '网络寻呼',
  'nav.circulation': '传阅',
  'nav.unread': '{n} 条未读',

  'status.in_office': '在岗',
  'status.in_meeting': '开会',
  'status.business_trip': '出差',
  'status.on_leave': '请假',
  'status.out': '外出',
  'status.remote': '远程办公',
  'status.off_duty': '下班',

  'presence.online': '在线',
  'presence.idle': '暂离',
  'presence.offline': '离线',
  'presence.last_seen': '最后在线 {time}',

  'board.department': '部门',
  'board.title': '人员去向',
  'board.filter': '按姓名筛选',
  'board.col.person': '人员',
  'board.col.status': '状态',
  'board.col.detail': '说明 / 地点',
  'board.col.until': '预计返回',
  'board.col.notes': '留言',
  'board.col.actions': '操作',
  'board.empty': '该部门暂无人员',
  'board.no_match': '没有符合条件的人员',
  'board.loading': '正在加载…',
  'board.me': '我',
  'board.leave_note': '留言',
  'board.set_for': '代为设置',
  'board.set_by': '由 {name} 设置',
  'board.notes_waiting': '{n} 条未读留言',
  'board.expired': '{name} 的去向已到期，恢复为在岗',
  'board.summary_total': '共 {n} 人',
  'board.refresh': '刷新',
  'board.location': '地点：{place}',

  'time.today': '今天',
  'time.tomorrow': '明天',
  'time.yesterday': '昨天',
  'time.just_now': '刚刚',
  'time.minutes_ago': '{n} 分钟前',
  'time.back_at': '{time} 返回',

  'wa.title': '我的去向',
  'wa.title_for': '代 {name} 设置去向',
  'wa.back_to_me': '改回设置我自己的',
  'wa.current': '当前：',
  'wa.status': '状态',
  'wa.note': '备注',
  'wa.note_placeholder': '如：参加局务会',
  'wa.location': '地点',
  'wa.location_placeholder': '如：三楼会议室',
  'wa.until': '预计返回',
  'wa.in_1h': '1小时后',
  'wa.end_of_day': '今天下班',
  'wa.tomorrow': '明天',
  'wa.clear': '清除',
  'wa.submit': '更新去向',
  'wa.submit_for': '为 {name} 更新',
  'wa.saving': '正在保存…',
  'wa.saved': '去向已更新',
  'wa.until_past': '返回时间应晚于现在',

  'notes.title': '我的留言',
  'notes.empty': '暂无留言',
  'notes.mark_read': '标为已读',
  'notes.mark_all_read': '全部已读',
  'notes.unread': '未读',
  'notes.received_toast': '{name} 给您留言：{body}',
  'notes.dialog_title': '给 {name} 留言',
  'notes.body': '留言内容',
  'notes.body_placeholder': '对方回来后会看到这条留言',
  'notes.submit': '留言',
  'notes.cancel': '取消',
  'notes.sent': '已给 {name} 留言',
  'notes.empty_body': '请填写留言内容',
  'notes.sending': '正在发送…',

  'error.bad_request': '输入有误',
  'error.unauthorized': '登录已失效，请重新登录',
  'error.forbidden': '没有权限执行此操作',
  'error.not_found': '对象不存在',
  'error.conflict': '状态冲突',
  'error.rate_limited': '操作过于频繁',
  'error.rate_limited_retry': '操作过于频繁，请 {n} 秒后重试',
  'error.too_large': '内容过大',
  'error.unavailable': '服务暂不可用',
  'error.internal': '服务器内部错误',
  'error.network': '无法连接服务器',
  'error.timeout': '请求超时，请稍后重试',
  'error.unknown': '操作失败',

  'common.close': '关闭',

  'pager.title': '寻呼',
  'pager.compose': '发寻呼',
  'pager.to': '收件人',
  'pager.to_placeholder': '输入姓名、账号、电话或部门查找',
  'pager.to_line': '致 {names}',
  'pager.whole_department': '整个部门',
  'pager.add_department': '＋ 按部门添加…',
  'pager.lookup_failed': '查找失败',
  'pager.remove': '移除',
  'pager.body': '内容',
  'pager.body_placeholder': '要传达的内容',
  'pager.urgent': '紧急',
  'pager.attach': '附件',
  'pager.ctrl_enter': 'Ctrl+Enter 发送',
  'pager.send': '发送',
  'pager.sending': '正在发送…',
  'pager.sent': '寻呼已发出',
  'pager.need_recipient': '请选择收件人',
  'pager.need_body': '请填写内容',
  'pager.wait_uploads': '附件仍在上传，请稍候',
  'pager.failed_uploads': '有附件上传失败，请移除后再发送',
  'pager.file_too_large': '文件过大',
  'pager.upload_failed': '上传失败',
  'pager.download': '下载',
  'pager.n_files': '{n} 个附件',
  'pager.inbox': '收件箱',
  'pager.sent_box': '已发送',
  'pager.inbox_empty': '暂无寻呼',
  'pager.sent_empty': '尚未发出寻呼',
  'pager.load_more': '加载更多',
  'pager.search_placeholder': '搜索寻呼记录',
  'pager.search_results': '“{query}”的搜索结果',
  'pager.search_clear': '清除搜索',
  'pager.search_none': '没有找到相关寻呼',
  'pager.mark_read': '标为已读',
  'pager.reply': '回复',
  'pager.reply_placeholder': '回复 {name}（Ctrl+Enter 发送）',
  'pager.via_sms': '短信回复',
  'pager.conversation_with': '与 {name} 的会话',
  'pager.thread_empty': '还没有往来寻呼',
  'pager.older': '更早的消息',
  'pager.pick_message': '选择一条寻呼查看详情',
  'pager.receipts': '回执',
  'pager.summary_read': '{read}/{total} 已读',
  'pager.col.name': '姓名',
  'pager.col.delivered': '已送达',
  'pager.col.read': '已读',
  'pager.col.sms': '短信',
  'pager.sms_sent': '已发短信',
  'pager.sms_failed': '短信发送失败',
  'pager.sms_queued': '短信待发',
  'pager.and_more': '{names} 等 {n} 人',
  'pager.n_people': '（{n} 人）',
  'pager.sep': '、',
  'pager.emailed': '已发邮件',
  'pager.settings': '提醒设置',
  'pager.notify_default': '开启桌面通知',
  'pager.notify_granted': '桌面通知已开启',
  'pager.notify_denied': '桌面通知已被浏览器禁止',
  'pager.notify_unsupported': '浏览器不支持桌面通知',
  'pager.sound': '提示音',
  'pager.sms_pref': '短信提醒',
  'pager.sms_offline': '离线时',
  'pager.sms_urgent': '仅紧急',
  'pager.sms_off': '关闭',
  'pager.quiet_hours': '免打扰时段（不发短信）',
  'pager.save': '保存',
  'pager.prefs_saved': '已保存',
  'pager.notify_title': '{name} 的寻呼',
  'pager.notify_title_urgent': '紧急寻呼：{name}',

  'circ.title': '传阅',
  'circ.inbox': '收到的',
  'circ.sent_box': '我发起的',
  'circ.new': '发起传阅',
  'circ.filter': '按状态筛选',
  'circ.filter_all': '全部',
  'circ.state.unopened': '未开封',
  'circ.state.opened': '已开封',
  'circ.state.confirmed': '确认完毕',
  'circ.recalled': '已撤回',
  'circ.inbox_empty': '暂无传阅',
  'circ.sent_empty': '尚未发起传阅',
  'circ.filter_empty': '没有符合条件的传阅',
  'circ.unavailable': '服务器暂不支持传阅，请稍后再试',
  'circ.pick': '选择一份传阅查看，或发起新的传阅',
  'circ.from': '{name} 发起',
  'circ.to_me': '发给我',
  'circ.deadline': '截止 {time}',
  'circ.deadline_near': '即将截止：{time}',
  'circ.deadline_over': '已逾期（截止 {time}）',
  'circ.n_people': '共 {n} 人',
  'circ.progress': '{done}/{total} 确认',
  'circ.recalled_note': '此传阅已被发起人撤回，无法查看。',
  'circ.recalled_sender': '此传阅已撤回，收件人无法再查看。',
  'circ.my_state': '我的状态',
  'circ.comment': '意见（可选）',
  'circ.comment_placeholder': '如：已阅，同意',
  'circ.confirm': '确认完毕',
  'circ.confirming': '正在提交…',
  'circ.confirmed_at': '已于 {time} 确认完毕',
  'circ.confirmed_done': '已确认完毕',
  'circ.my_comment': '我的意见：{comment}',
  'circ.form_title': '发起传阅',
  'circ.field_title': '标题',
  'circ.title_placeholder': '传阅事项的标题',
  'circ.field_body': '正文',
  'circ.body_placeholder': '正文内容，可设置加粗、列表、链接等格式',
  'circ.field_to': '传阅对象',
  'circ.field_deadline': '截止时间（可选）',
  'circ.send': '发送传阅',
  'circ.sending': '正在发送…',
  'circ.sent': '传阅已发出，共 {n} 人',
  'circ.cancel': '取消',
  'circ.need_title': '请填写标题',
  'circ.need_body': '请填写正文',
  'circ.need_recipient': '请选择传阅对象',
  'circ.deadline_past': '截止时间应晚于现在',
  'circ.body_too_long': '正文过长，请精简或改用附件',
  'circ.fmt.bold': '加粗',
  'circ.fmt.italic': '斜体',
  'circ.fmt.underline': '下划线',
  'circ.fmt.ul': '项目符号',
  'circ.fmt.ol': '编号',
  'circ.fmt.link': '插入链接',
  'circ.fmt.clear': '清除格式',
  'circ.link_prompt': '链接地址（http:// 或 https://）',
  'circ.status_title': '传阅情况',
  'circ.col.name': '姓名',
  'circ.col.state': '状态',
  'circ.col.opened': '开封时间',
  'circ.col.confirmed': '确认时间',
  'circ.col.comment': '意见',
  'circ.remind': '提醒',
  'circ.remind_wait': '提醒（{time} 后可用）',
  'circ.reminding': '正在提醒…',
  'circ.reminded': '已提醒 {n} 人',
  'circ.reminded_sms': '已提醒 {n} 人，其中 {sms} 人发送短信',
  'circ.recall': '撤回',
  'circ.recall_confirm': '确定撤回“{title}”吗？撤回后收件人将无法再查看。',
  'circ.recalled_done': '传阅已撤回',
  'circ.overdue_banner': '已过截止时间，仍有 {n} 人未确认：{names}',
  'circ.overdue_toast': '传阅“{title}”已过截止时间，{n} 人未确认',
  'circ.recalled_toast': '传阅“{title}”已被撤回',
  'circ.notify_title': '{name} 发来传阅',
  'circ.notify_reminder': '{name} 提醒您确认传阅',
  'circ.popup_received': '新传阅',
  'circ.popup_reminder': '催办',
  'circ.popup_open': '查看',
  'circ.all_confirmed': '全部确认完毕',
};

export type MessageKey = keyof typeof zh;

const en: Record<MessageKey, string> = {
  'app.name': 'Liaison',
  'app.tagline': 'Real-time office collaboration',

  'login.title': 'Sign in',
  'login.account': 'Account',
  'login.password': 'Password',
  'login.submit': 'Sign in',
  'login.busy': 'Signing in…',
  'login.failed': 'Wrong account or password',
  'login.missing': 'Enter your account and password',
  'login.hint': 'Use your organisation account',

  'header.logout': 'Sign out',
  'header.notes_unread': '{n} unread notes',
  'header.lang': '中文',
  'header.lang_title': '切换到中文',

  'conn.connected': 'Connected',
  'conn.connecting': 'Connecting',
  'conn.reconnecting': 'Reconnecting',
  'conn.reconnecting_n': 'Reconnecting (attempt {n})',
  'conn.offline': 'Offline',

  'nav.label': 'Panels',
  'nav.board': 'Whereabouts',
  'nav.pager': 'Pager',
  'nav.circulation': 'Circulation',
  'nav.unread': '{n} unread',

  'status.in_office': 'In office',
  'status.in_meeting': 'In a meeting',
  'status.business_trip': 'Business trip',
  'status.on_leave': 'On leave',
  'status.out': 'Out',
  'status.remote': 'Remote',
  'status.off_duty': 'Off duty',

  'presence.online': 'Online',
  'presence.idle': 'Idle',
  'presence.offline': 'Offline',
  'presence.last_seen': 'Last seen {time}',

  'board.department': 'Department',
  'board.title': 'Whereabouts',
  'board.filter': 'Filter by name',
  'board.col.person': 'Person',
  'board.col.status': 'Status',
  'board.col.detail': 'Note / location',
  'board.col.until': 'Back',
  'board.col.notes': 'Notes',
  'board.col.actions': 'Actions',
  'board.empty': 'No one in this department',
  'board.no_match': 'No one matches',
  'board.loading': 'Loading…',
  'board.me': 'me',
  'board.leave_note': 'Leave note',
  'board.set_for': 'Set status',
  'board.set_by': 'set by {name}',
  'board.notes_waiting': '{n} unread notes',
  'board.expired': "{name}'s whereabouts expired: back in office",
  'board.summary_total': '{n} people',
  'board.refresh': 'Refresh',
  'board.location': 'at {place}',

  'time.today': 'today',
  'time.tomorrow': 'tomorrow',
  'time.yesterday': 'yesterday',
  'time.just_now': 'just now',
  'time.minutes_ago': '{n} min ago',
  'time.back_at': 'back {time}',

  'wa.title': 'My whereabouts',
  'wa.title_for': 'Whereabouts of {name}',
  'wa.back_to_me': 'Set my own instead',
  'wa.current': 'Now: ',
  'wa.status': 'Status',
  'wa.note': 'Note',
  'wa.note_placeholder': 'e.g. at the board meeting',
  'wa.location': 'Location',
  'wa.location_placeholder': 'e.g. meeting room 3F',
  'wa.until': 'Back at',
  'wa.in_1h': 'In 1 hour',
  'wa.end_of_day': 'End of day',
  'wa.tomorrow': 'Tomorrow',
  'wa.clear': 'Clear',
  'wa.submit': 'Update',
  'wa.submit_for': 'Update for {name}',
  'wa.saving': 'Saving…',
  'wa.saved': 'Whereabouts updated',
  'wa.until_past': 'The return time must be in the future',

  'notes.title': 'My notes',
  'notes.empty': 'No notes',
  'notes.mark_read': 'Mark read',
  'notes.mark_all_read': 'Mark all read',
  'notes.unread': 'unread',
  'notes.received_toast': 'Note from {name}: {body}',
  'notes.dialog_title': 'Leave a note for {name}',
  'notes.body': 'Note',
  'notes.body_placeholder': 'They will see it when they are back',
  'notes.submit': 'Leave note',
  'notes.cancel': 'Cancel',
  'notes.sent': 'Note left for {name}',
  'notes.empty_body': 'Write something first',
  'notes.sending': 'Sending…',

  'error.bad_request': 'Invalid input',
  'error.unauthorized': 'Your session has ended, please sign in again',
  'error.forbidden': 'You are not allowed to do this',
  'error.not_found': 'Not found',
  'error.conflict': 'Conflict',
  'error.rate_limited': 'Too many requests',
  'error.rate_limited_retry': 'Too many requests, retry in {n} s',
  'error.too_large': 'Too large',
  'error.unavailable': 'Service unavailable',
  'error.internal': 'Server error',
  'error.network': 'Cannot reach the server',
  'error.timeout': 'No answer from the server, try again',
  'error.unknown': 'Something went wrong',

  'common.close': 'Close',

  'pager.title': 'Pages',
  'pager.compose': 'New page',
  'pager.to': 'To',
  'pager.to_placeholder': 'Find by name, account, phone or department',
  'pager.to_line': 'To {names}',
  'pager.whole_department': 'whole department',
  'pager.add_department': '+ Add a department…',
  'pager.lookup_failed': 'Lookup failed',
  'pager.remove': 'Remove',
  'pager.body': 'Message',
  'pager.body_placeholder': 'What do you need to say?',
  'pager.urgent': 'Urgent',
  'pager.attach': 'Attach',
  'pager.ctrl_enter': 'Ctrl+Enter to send',
  'pager.send': 'Send',
  'pager.sending': 'Sending…',
  'pager.sent': 'Page sent',
  'pager.need_recipient': 'Choose at least one recipient',
  'pager.need_body': 'Write something first',
  'pager.wait_uploads': 'Attachments are still uploading',
  'pager.failed_uploads': 'An attachment failed to upload: remove it first',
  'pager.file_too_large': 'File too large',
  'pager.upload_failed': 'Upload failed',
  'pager.download': 'Download',
  'pager.n_files': '{n} attachments',
  'pager.inbox': 'Inbox',
  'pager.sent_box': 'Sent',
  'pager.inbox_empty': 'No pages',
  'pager.sent_empty': 'Nothing sent yet',
  'pager.load_more': 'Load more',
  'pager.search_placeholder': 'Search pages',
  'pager.search_results': 'Results for "{query}"',
  'pager.search_clear': 'Clear search',
  'pager.search_none': 'No pages found',
  'pager.mark_read': 'Mark read',
  'pager.reply': 'Reply',
  'pager.reply_placeholder': 'Reply to {name} (Ctrl+Enter to send)',
  'pager.via_sms': 'SMS reply',
  'pager.conversation_with': 'Conversation with {name}',
  'pager.thread_empty': 'No pages exchanged yet',
  'pager.older': 'Older messages',
  'pager.pick_message': 'Select a page to see it here',
  'pager.receipts': 'Receipts',
  'pager.summary_read': '{read}/{total} read',
  'pager.col.name': 'Name',
  'pager.col.delivered': 'Delivered',
  'pager.col.read': 'Read',
  'pager.col.sms': 'SMS',
  'pager.sms_sent': 'SMS sent',
  'pager.sms_failed': 'SMS failed',
  'pager.sms_queued': 'SMS queued',
  'pager.and_more': '{names} and others ({n})',
  'pager.n_people': '({n} people)',
  'pager.sep': ', ',
  'pager.emailed': 'E-mailed',
  'pager.settings': 'Alerts',
  'pager.notify_default': 'Enable desktop notifications',
  'pager.notify_granted': 'Desktop notifications on',
  'pager.notify_denied': 'Notifications blocked by the browser',
  'pager.notify_unsupported': 'Notifications not supported',
  'pager.sound': 'Sound',
  'pager.sms_pref': 'SMS alerts',
  'pager.sms_offline': 'When offline',
  'pager.sms_urgent': 'Urgent only',
  'pager.sms_off': 'Off',
  'pager.quiet_hours': 'Quiet hours (no SMS)',
  'pager.save': 'Save',
  'pager.prefs_saved': 'Saved',
  'pager.notify_title': 'Page from {name}',
  'pager.notify_title_urgent': 'URGENT page from {name}',

  'circ.title': 'Circulation',
  'circ.inbox': 'Received',
  'circ.sent_box': 'Sent by me',
  'circ.new': 'New circulation',
  'circ.filter': 'Filter by state',
  'circ.filter_all': 'All',
  'circ.state.unopened': 'Unopened',
  'circ.state.opened': 'Opened',
  'circ.state.confirmed': 'Confirmed',
  'circ.recalled': 'Recalled',
  'circ.inbox_empty': 'No circulations',
  'circ.sent_empty': 'Nothing circulated yet',
  'circ.filter_empty': 'No circulation matches',
  'circ.unavailable': 'This server does not offer circulation yet; try again later',
  'circ.pick': 'Select a circulation to read it, or start a new one',
  'circ.from': 'from {name}',
  'circ.to_me': 'to me',
  'circ.deadline': 'due {time}',
  'circ.deadline_near': 'Due soon: {time}',
  'circ.deadline_over': 'Overdue (due {time})',
  'circ.n_people': '{n} people',
  'circ.progress': '{done}/{total} confirmed',
  'circ.recalled_note': 'Its sender recalled this circulation: it can no longer be opened.',
  'circ.recalled_sender': 'Recalled: recipients can no longer read it.',
  'circ.my_state': 'My state',
  'circ.comment': 'Comment (optional)',
  'circ.comment_placeholder': 'e.g. Read and agreed',
  'circ.confirm': 'Confirm',
  'circ.confirming': 'Confirming…',
  'circ.confirmed_at': 'Confirmed {time}',
  'circ.confirmed_done': 'Confirmed',
  'circ.my_comment': 'My comment: {comment}',
  'circ.form_title': 'New circulation',
  'circ.field_title': 'Title',
  'circ.title_placeholder': 'What is being circulated',
  'circ.field_body': 'Text',
  'circ.body_placeholder': 'The text; bold, lists and links are available',
  'circ.field_to': 'Recipients',
  'circ.field_deadline': 'Deadline (optional)',
  'circ.send': 'Send',
  'circ.sending': 'Sending…',
  'circ.sent': 'Circulated to {n} people',
  'circ.cancel': 'Cancel',
  'circ.need_title': 'Enter a title',
  'circ.need_body': 'Write the text',
  'circ.need_recipient': 'Choose at least one recipient',
  'circ.deadline_past': 'The deadline must be in the future',
  'circ.body_too_long': 'The text is too long: shorten it or attach a file',
  'circ.fmt.bold': 'Bold',
  'circ.fmt.italic': 'Italic',
  'circ.fmt.underline': 'Underline',
  'circ.fmt.ul': 'Bulleted list',
  'circ.fmt.ol': 'Numbered list',
  'circ.fmt.link': 'Insert link',
  'circ.fmt.clear': 'Clear formatting',
  'circ.link_prompt': 'Link address (http:// or https://)',
  'circ.status_title': 'Status',
  'circ.col.name': 'Name',
  'circ.col.state': 'State',
  'circ.col.opened': 'Opened',
  'circ.col.confirmed': 'Confirmed',
  'circ.col.comment': 'Comment',
  'circ.remind': 'Remind',
  'circ.remind_wait': 'Remind (in {time})',
  'circ.reminding': 'Reminding…',
  'circ.reminded': 'Reminded {n} people',
  'circ.reminded_sms': 'Reminded {n} people, {sms} by SMS',
  'circ.recall': 'Recall',
  'circ.recall_confirm': 'Recall "{title}"? Recipients will no longer be able to read it.',
  'circ.recalled_done': 'Circulation recalled',
  'circ.overdue_banner': 'The deadline has passed; {n} have not confirmed: {names}',
  'circ.overdue_toast': '"{title}" is past its deadline: {n} have not confirmed',
  'circ.recalled_toast': '"{title}" was recalled by its sender',
  'circ.notify_title': 'Circulation from {name}',
  'circ.notify_reminder': '{name} asks you to confirm a circulation',
  'circ.popup_received': 'New',
  'circ.popup_reminder': 'Reminder',
  'circ.popup_open': 'Open',
  'circ.all_confirmed': 'All confirmed',
};

const dictionaries: Record<Lang, Record<MessageKey, string>> = { zh, en };

function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'zh' || saved === 'en') return saved;
  } catch {
    // fall through to the default
  }
  return 'zh';
}

export const lang = new Store<Lang>(initialLang());

function applyDocumentLang(value: Lang): void {
  document.documentElement.lang = value === 'zh' ? 'zh-CN' : 'en';
}
applyDocumentLang(lang.get());

export function setLang(value: Lang): void {
  try {
    localStorage.setItem(STORAGE_KEY, value);
  } catch {
    // remembered for this page only
  }
  applyDocumentLang(value);
  lang.set(value);
}

export function t(key: MessageKey, vars?: Record<string, string | number>): string {
  const text = dictionaries[lang.get()][key] ?? zh[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (match, name: string) =>
    name in vars ? String(vars[name]) : match,
  );
}

/** Whether the key exists, for codes that come from the server (error codes, statuses). */
export function hasKey(key: string): key is MessageKey {
  return key in zh;
}

// --- times ---------------------------------------------------------------------------------

function startOfDay(date: Date): number {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

const DAY_MS = 86_400_000;

const WEEKDAYS_ZH = ['周日', '周一', '周二', '周三', '周四', '周五', '周六'];
const WEEKDAYS_EN = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS_EN = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * A moment in the local time zone, as people say it: "今天 17:30", "明天 09:00", "周五 14:00"
 * (within the week ahead), "5月6日 09:30", "2031年5月6日 09:30".
 */
export function formatDayTime(iso: string, now = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const zhLang = lang.get() === 'zh';
  const time = `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
  const days = Math.round((startOfDay(date) - startOfDay(now)) / DAY_MS);
  if (days === 0) return `${t('time.today')} ${time}`;
  if (days === 1) return `${t('time.tomorrow')} ${time}`;
  if (days === -1) return `${t('time.yesterday')} ${time}`;
  if (days > 1 && days < 7) {
    return `${(zhLang ? WEEKDAYS_ZH : WEEKDAYS_EN)[date.getDay()]} ${time}`;
  }
  const sameYear = date.getFullYear() === now.getFullYear();
  if (zhLang) {
    const year = sameYear ? '' : `${date.getFullYear()}年`;
    return `${year}${date.getMonth() + 1}月${date.getDate()}日 ${time}`;
  }
  const year = sameYear ? '' : ` ${date.getFullYear()}`;
  return `${date.getDate()} ${MONTHS_EN[date.getMonth()]}${year} ${time}`;
}

/** "明天 17:30 返回" / "back tomorrow 17:30" */
export function formatUntil(iso: string, now = new Date()): string {
  return t('time.back_at', { time: formatDayTime(iso, now) });
}

/** "刚刚", "5 分钟前", else the day and time. */
export function formatAgo(iso: string, now = new Date()): string {
  const date = new Date(iso);
  const elapsed = now.getTime() - date.getTime();
  if (Number.isNaN(elapsed)) return iso;
  if (elapsed < 60_000) return t('time.just_now');
  if (elapsed < 3_600_000) return t('time.minutes_ago', { n: Math.floor(elapsed / 60_000) });
  return formatDayTime(iso, now);
}

/** Full local date and time, for tooltips. */
export function formatFull(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(lang.get() === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}
