<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AgentStatsWidget</name>
    <message>
        <source>Calls %1</source>
        <translation>通话 %1</translation>
    </message>
    <message>
        <source>Connected %1</source>
        <translation>接通 %1</translation>
    </message>
    <message>
        <source>Talk %1</source>
        <translation>通话时长 %1</translation>
    </message>
    <message>
        <source>Today</source>
        <translation>今天</translation>
    </message>
    <message>
        <source>Outgoing: %1</source>
        <translation>呼出：%1</translation>
    </message>
    <message>
        <source>Connect rate: %1%</source>
        <translation>接通率：%1%</translation>
    </message>
</context>
<context>
    <name>App</name>
    <message>
        <source>Preparing %1 demo customers for the first start…</source>
        <translation>正在为首次启动准备 %1 位演示客户…</translation>
    </message>
    <message>
        <source>The phone could not start: %1</source>
        <translation>电话无法启动：%1</translation>
    </message>
    <message>
        <source>Phone</source>
        <translation>电话</translation>
    </message>
    <message>
        <source>Call list</source>
        <translation>呼叫列表</translation>
    </message>
    <message>
        <source>Sync is not available: %1</source>
        <translation>同步不可用：%1</translation>
    </message>
    <message>
        <source>Sync conflicts</source>
        <translation>同步冲突</translation>
    </message>
    <message>
        <source>Database problem</source>
        <translation>数据库问题</translation>
    </message>
    <message>
        <source>The recording is not on this computer: %1</source>
        <translation>录音不在这台电脑上：%1</translation>
    </message>
    <message>
        <source>No audio player is set up to open %1</source>
        <translation>没有可以打开 %1 的音频播放器</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Some settings could not be used:</source>
        <translation>部分设置无法使用：</translation>
    </message>
    <message>
        <source>Starting the phone…</source>
        <translation>正在启动电话…</translation>
    </message>
</context>
<context>
    <name>ConflictsModel</name>
    <message>
        <source>Record</source>
        <translation>记录</translation>
    </message>
    <message>
        <source>Field</source>
        <translation>字段</translation>
    </message>
    <message>
        <source>Lost value</source>
        <translation>被覆盖的值</translation>
    </message>
    <message>
        <source>Current value / reason</source>
        <translation>当前值 / 原因</translation>
    </message>
    <message>
        <source>When</source>
        <translation>时间</translation>
    </message>
    <message>
        <source>(whole change)</source>
        <translation>（整条变更）</translation>
    </message>
</context>
<context>
    <name>ConflictsView</name>
    <message>
        <source>Sync conflicts</source>
        <translation>同步冲突</translation>
    </message>
    <message>
        <source>No sync conflicts.</source>
        <translation>没有同步冲突。</translation>
    </message>
    <message>
        <source>Put the lost value back</source>
        <translation>恢复被覆盖的值</translation>
    </message>
    <message>
        <source>Dismiss</source>
        <translation>忽略</translation>
    </message>
    <message>
        <source>Could not load conflicts: %1</source>
        <translation>无法加载冲突：%1</translation>
    </message>
</context>
<context>
    <name>CustomerDialog</name>
    <message>
        <source>New customer</source>
        <translation>新建客户</translation>
    </message>
    <message>
        <source>Edit customer</source>
        <translation>编辑客户</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>姓名</translation>
    </message>
    <message>
        <source>Company</source>
        <translation>公司</translation>
    </message>
    <message>
        <source>City</source>
        <translation>城市</translation>
    </message>
    <message>
        <source>Country (2 letters)</source>
        <translation>国家（两位字母代码）</translation>
    </message>
    <message>
        <source>E-mail</source>
        <translation>电子邮件</translation>
    </message>
    <message>
        <source>Owner</source>
        <translation>负责人</translation>
    </message>
    <message>
        <source>Optional, e.g. +86 138 0013 8000</source>
        <translation>可选，例如 +86 138 0013 8000</translation>
    </message>
    <message>
        <source>Phone</source>
        <translation>电话</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Stage</source>
        <translation>阶段</translation>
    </message>
    <message>
        <source>Do not call</source>
        <translation>请勿致电</translation>
    </message>
</context>
<context>
    <name>CustomerListModel</name>
    <message>
        <source>Could not read customers: %1</source>
        <translation>无法读取客户：%1</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>姓名</translation>
    </message>
    <message>
        <source>Company</source>
        <translation>公司</translation>
    </message>
    <message>
        <source>City</source>
        <translation>城市</translation>
    </message>
    <message>
        <source>Phone</source>
        <translation>电话</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Tags</source>
        <translation>标签</translation>
    </message>
</context>
<context>
    <name>CustomerListPanel</name>
    <message>
        <source>Search name, company, city, tag or phone digits  (Ctrl+F)</source>
        <translation>搜索姓名、公司、城市、标签或电话号码  (Ctrl+F)</translation>
    </message>
    <message>
        <source>Search customers</source>
        <translation>搜索客户</translation>
    </message>
    <message>
        <source>Customers</source>
        <translation>客户</translation>
    </message>
    <message>
        <source>No customer matches “%1”.
Check the spelling, try fewer letters or a few digits of the phone number, or press Esc to clear the search.</source>
        <translation>没有与“%1”匹配的客户。
请检查拼写，少输入几个字，或输入电话号码中的几位数字；按 Esc 清除搜索。</translation>
    </message>
    <message>
        <source>No customers yet.
Use File → New customer… or File → Import… to add some.</source>
        <translation>还没有客户。
请使用“文件 → 新建客户…”或“文件 → 导入…”添加客户。</translation>
    </message>
</context>
<context>
    <name>DetailPane</name>
    <message>
        <source>Select a customer on the left to see their details.
Ctrl+F searches, the arrow keys move, Enter opens.</source>
        <translation>在左侧选择一位客户以查看详细信息。
Ctrl+F 搜索，方向键移动，回车打开。</translation>
    </message>
    <message>
        <source>Tags</source>
        <translation>标签</translation>
    </message>
    <message>
        <source>Details</source>
        <translation>详细信息</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>姓名</translation>
    </message>
    <message>
        <source>Company</source>
        <translation>公司</translation>
    </message>
    <message>
        <source>City</source>
        <translation>城市</translation>
    </message>
    <message>
        <source>Country</source>
        <translation>国家</translation>
    </message>
    <message>
        <source>E-mail</source>
        <translation>电子邮件</translation>
    </message>
    <message>
        <source>Owner</source>
        <translation>负责人</translation>
    </message>
    <message>
        <source>Do not call this customer</source>
        <translation>请勿致电此客户</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Stage</source>
        <translation>阶段</translation>
    </message>
    <message>
        <source>Revert</source>
        <translation>还原</translation>
    </message>
    <message>
        <source>Save</source>
        <translation>保存</translation>
    </message>
    <message>
        <source>Save the changed fields (Ctrl+S)</source>
        <translation>保存已修改的字段 (Ctrl+S)</translation>
    </message>
    <message>
        <source>Phone numbers</source>
        <translation>电话号码</translation>
    </message>
    <message>
        <source>Add phone…</source>
        <translation>添加电话…</translation>
    </message>
    <message>
        <source>Edit…</source>
        <translation>编辑…</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>删除</translation>
    </message>
    <message>
        <source>Follow-ups</source>
        <translation>跟进</translation>
    </message>
    <message>
        <source>Follow-up, e.g. Send the price list</source>
        <translation>跟进事项，例如：发送报价单</translation>
    </message>
    <message>
        <source>Schedule</source>
        <translation>安排</translation>
    </message>
    <message>
        <source>Notes</source>
        <translation>备注</translation>
    </message>
    <message>
        <source>Write a note…</source>
        <translation>写备注…</translation>
    </message>
    <message>
        <source>Add note</source>
        <translation>添加备注</translation>
    </message>
    <message>
        <source>Calls</source>
        <translation>通话</translation>
    </message>
    <message>
        <source>No calls yet.</source>
        <translation>还没有通话记录。</translation>
    </message>
    <message>
        <source>▶ Play recording</source>
        <translation>▶ 播放录音</translation>
    </message>
    <message>
        <source>No notes yet.</source>
        <translation>还没有备注。</translation>
    </message>
    <message>
        <source>Outgoing</source>
        <translation>呼出</translation>
    </message>
    <message>
        <source>Incoming</source>
        <translation>呼入</translation>
    </message>
    <message>
        <source>Recorded call — double-click or press Enter to listen</source>
        <translation>已录音的通话 — 双击或按回车收听</translation>
    </message>
    <message>
        <source>This number may not be dialable: %1</source>
        <translation>此号码可能无法拨打：%1</translation>
    </message>
    <message>
        <source>No phone number — use Add phone…</source>
        <translation>没有电话号码 — 请使用“添加电话…”</translation>
    </message>
    <message>
        <source>Tick when done</source>
        <translation>完成后勾选</translation>
    </message>
    <message>
        <source>No follow-ups scheduled.</source>
        <translation>没有安排跟进。</translation>
    </message>
    <message>
        <source>Saved %1</source>
        <translation>已保存 %1</translation>
    </message>
    <message>
        <source>Tag added</source>
        <translation>已添加标签</translation>
    </message>
    <message>
        <source>Tag removed</source>
        <translation>已删除标签</translation>
    </message>
    <message>
        <source>Note added</source>
        <translation>已添加备注</translation>
    </message>
    <message>
        <source>Follow-up scheduled</source>
        <translation>已安排跟进</translation>
    </message>
    <message>
        <source>Follow-up done</source>
        <translation>跟进已完成</translation>
    </message>
    <message>
        <source>Phone added</source>
        <translation>已添加电话</translation>
    </message>
    <message>
        <source>Phone saved</source>
        <translation>已保存电话</translation>
    </message>
    <message>
        <source>Phone removed</source>
        <translation>已删除电话</translation>
    </message>
</context>
<context>
    <name>Dialer</name>
    <message>
        <source>Waiting</source>
        <translation>等待中</translation>
    </message>
    <message>
        <source>Now</source>
        <translation>现在</translation>
    </message>
    <message>
        <source>Retry later</source>
        <translation>稍后重试</translation>
    </message>
    <message>
        <source>Outside hours</source>
        <translation>非呼叫时段</translation>
    </message>
    <message>
        <source>Done</source>
        <translation>完成</translation>
    </message>
    <message>
        <source>Skipped</source>
        <translation>已跳过</translation>
    </message>
</context>
<context>
    <name>DialerPanel</name>
    <message>
        <source>Preview (countdown)</source>
        <translation>预览（倒计时）</translation>
    </message>
    <message>
        <source>Power (dial after wrap-up)</source>
        <translation>自动（话后处理完成后拨号）</translation>
    </message>
    <message>
        <source>&amp;Use current list</source>
        <translation>使用当前列表(&amp;U)</translation>
    </message>
    <message>
        <source>S&amp;tart</source>
        <translation>开始(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;Pause</source>
        <translation>暂停(&amp;P)</translation>
    </message>
    <message>
        <source>S&amp;kip</source>
        <translation>跳过(&amp;K)</translation>
    </message>
    <message>
        <source>Call &amp;now</source>
        <translation>立即呼叫(&amp;N)</translation>
    </message>
    <message>
        <source>%v of %m done</source>
        <translation>已完成 %v / %m</translation>
    </message>
    <message>
        <source>Saved lists</source>
        <translation>已保存的列表</translation>
    </message>
    <message>
        <source>Name for this list</source>
        <translation>此列表的名称</translation>
    </message>
    <message>
        <source>Sa&amp;ve list</source>
        <translation>保存列表(&amp;V)</translation>
    </message>
    <message numerus="yes">
        <source>%n customers in the call list.</source>
        <translation>
            <numerusform>呼叫列表中有 %n 位客户。</numerusform>
        </translation>
    </message>
    <message>
        <source>Call list “%1” saved.</source>
        <translation>呼叫列表“%1”已保存。</translation>
    </message>
    <message>
        <source>%1: %2 customers in the call list.</source>
        <translation>%1：呼叫列表中有 %2 位客户。</translation>
    </message>
    <message>
        <source>&amp;Resume</source>
        <translation>继续(&amp;R)</translation>
    </message>
    <message>
        <source>Calling…</source>
        <translation>正在呼叫…</translation>
    </message>
    <message>
        <source>Wrap up the call to continue.</source>
        <translation>请完成话后处理后继续。</translation>
    </message>
    <message>
        <source>Paused.</source>
        <translation>已暂停。</translation>
    </message>
    <message>
        <source>Waiting for the next retry.</source>
        <translation>等待下一次重试。</translation>
    </message>
    <message>
        <source>No customer up next</source>
        <translation>没有待呼叫的客户</translation>
    </message>
    <message>
        <source>attempt %1</source>
        <translation>第 %1 次尝试</translation>
    </message>
    <message>
        <source>Calling in %1 s — Skip or Call now</source>
        <translation>%1 秒后呼叫 — 跳过或立即呼叫</translation>
    </message>
    <message>
        <source>%1 done, %2 left</source>
        <translation>已完成 %1，剩余 %2</translation>
    </message>
</context>
<context>
    <name>DispositionModel</name>
    <message>
        <source>Press %1</source>
        <translation>按 %1</translation>
    </message>
</context>
<context>
    <name>ExportController</name>
    <message>
        <source>Export customers…</source>
        <translation>导出客户…</translation>
    </message>
    <message>
        <source>Excel workbook (*.xlsx)</source>
        <translation>Excel 工作簿 (*.xlsx)</translation>
    </message>
    <message>
        <source>CSV, UTF-8 (*.csv)</source>
        <translation>CSV，UTF-8 (*.csv)</translation>
    </message>
    <message>
        <source>CSV, GB18030 / GBK for older Chinese Excel (*.csv)</source>
        <translation>CSV，GB18030 / GBK，适用于旧版中文 Excel (*.csv)</translation>
    </message>
    <message>
        <source>Export customers</source>
        <translation>导出客户</translation>
    </message>
    <message>
        <source>Exporting customers…</source>
        <translation>正在导出客户…</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>{0} customers exported to {1}.</source>
        <translation>已将 {0} 位客户导出到 {1}。</translation>
    </message>
</context>
<context>
    <name>FollowupReminder</name>
    <message>
        <source>Follow-ups</source>
        <translation>跟进</translation>
    </message>
    <message numerus="yes">
        <source>%n follow-up(s) overdue.</source>
        <translation>
            <numerusform>%n 个跟进已逾期。</numerusform>
        </translation>
    </message>
    <message>
        <source>Call %1 now: %2</source>
        <translation>现在致电 %1：%2</translation>
    </message>
    <message>
        <source>(+%1 more)</source>
        <translation>（还有 %1 个）</translation>
    </message>
    <message>
        <source>Follow-up due</source>
        <translation>跟进到期</translation>
    </message>
</context>
<context>
    <name>ImportDialog</name>
    <message>
        <source>Import customers</source>
        <translation>导入客户</translation>
    </message>
    <message>
        <source>Back</source>
        <translation>上一步</translation>
    </message>
    <message>
        <source>Check file</source>
        <translation>检查文件</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Choose a CSV or Excel (.xlsx) file</source>
        <translation>选择 CSV 或 Excel (.xlsx) 文件</translation>
    </message>
    <message>
        <source>Choose file…</source>
        <translation>选择文件…</translation>
    </message>
    <message>
        <source>Detect automatically</source>
        <translation>自动检测</translation>
    </message>
    <message>
        <source>Comma</source>
        <translation>逗号</translation>
    </message>
    <message>
        <source>Semicolon</source>
        <translation>分号</translation>
    </message>
    <message>
        <source>Tab</source>
        <translation>制表符</translation>
    </message>
    <message>
        <source>Vertical bar</source>
        <translation>竖线</translation>
    </message>
    <message>
        <source>Sheet:</source>
        <translation>工作表：</translation>
    </message>
    <message>
        <source>File:</source>
        <translation>文件：</translation>
    </message>
    <message>
        <source>Encoding:</source>
        <translation>编码：</translation>
    </message>
    <message>
        <source>Separator:</source>
        <translation>分隔符：</translation>
    </message>
    <message>
        <source>Which customer field does each column hold?</source>
        <translation>每一列对应哪个客户字段？</translation>
    </message>
    <message>
        <source>Preview (first rows):</source>
        <translation>预览（前几行）：</translation>
    </message>
    <message>
        <source>For every group:</source>
        <translation>对所有分组：</translation>
    </message>
    <message>
        <source>Copy report</source>
        <translation>复制报告</translation>
    </message>
    <message>
        <source>Save report…</source>
        <translation>保存报告…</translation>
    </message>
    <message>
        <source>Customer files (*.csv *.txt *.xlsx)</source>
        <translation>客户文件 (*.csv *.txt *.xlsx)</translation>
    </message>
    <message>
        <source>All files (*)</source>
        <translation>所有文件 (*)</translation>
    </message>
    <message>
        <source>Reading the file…</source>
        <translation>正在读取文件…</translation>
    </message>
    <message>
        <source>Detected: {0}, separated by {1}.</source>
        <translation>检测到：{0}，以{1}分隔。</translation>
    </message>
    <message>
        <source>Excel workbook, sheet “{0}”.</source>
        <translation>Excel 工作簿，工作表“{0}”。</translation>
    </message>
    <message>
        <source>(column {0})</source>
        <translation>（第 {0} 列）</translation>
    </message>
    <message>
        <source>{0} rows shown. Check the mapping, then press “Check file”.</source>
        <translation>显示了 {0} 行。请检查字段对应关系，然后点击“检查文件”。</translation>
    </message>
    <message>
        <source>Checking every row…</source>
        <translation>正在检查每一行…</translation>
    </message>
    <message>
        <source>{0} rows checked: {1} can be imported, {2} will be rejected (listed in the report). {3} groups of rows share a phone number with each other or with an existing customer: choose what to do with each.</source>
        <translation>已检查 {0} 行：{1} 行可以导入，{2} 行将被拒绝（见报告）。有 {3} 组行彼此之间或与已有客户的电话号码相同：请为每一组选择处理方式。</translation>
    </message>
    <message>
        <source>Importing…</source>
        <translation>正在导入…</translation>
    </message>
    <message>
        <source>{0} rows read: {1} imported as new customers, {2} merged into existing ones, {3} skipped as duplicates, {4} rejected, {5} warnings.</source>
        <translation>已读取 {0} 行：{1} 行作为新客户导入，{2} 行合并到已有客户，{3} 行作为重复项跳过，{4} 行被拒绝，{5} 个警告。</translation>
    </message>
    <message>
        <source>The import STOPPED: {0} Rows up to line {1} were saved; nothing after it was imported.</source>
        <translation>导入已中止：{0} 第 {1} 行及之前的行已保存；之后的内容均未导入。</translation>
    </message>
    <message>
        <source>Cancelled: rows up to line {0} were saved; nothing after it was imported.</source>
        <translation>已取消：第 {0} 行及之前的行已保存；之后的内容均未导入。</translation>
    </message>
    <message>
        <source>Save report</source>
        <translation>保存报告</translation>
    </message>
    <message>
        <source>CSV (*.csv)</source>
        <translation>CSV (*.csv)</translation>
    </message>
    <message>
        <source>Could not save the report: {0}</source>
        <translation>无法保存报告：{0}</translation>
    </message>
    <message>
        <source>Report saved to {0}.</source>
        <translation>报告已保存到 {0}。</translation>
    </message>
    <message>
        <source>Import</source>
        <translation>导入</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Cancelling after the current batch…</source>
        <translation>将在当前批次完成后取消…</translation>
    </message>
    <message>
        <source>(do not import)</source>
        <translation>（不导入）</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>姓名</translation>
    </message>
    <message>
        <source>Company</source>
        <translation>公司</translation>
    </message>
    <message>
        <source>City</source>
        <translation>城市</translation>
    </message>
    <message>
        <source>Country</source>
        <translation>国家</translation>
    </message>
    <message>
        <source>E-mail</source>
        <translation>电子邮件</translation>
    </message>
    <message>
        <source>Phone</source>
        <translation>电话</translation>
    </message>
    <message>
        <source>Tags</source>
        <translation>标签</translation>
    </message>
    <message>
        <source>Note</source>
        <translation>备注</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Stage</source>
        <translation>阶段</translation>
    </message>
    <message>
        <source>Owner</source>
        <translation>负责人</translation>
    </message>
    <message>
        <source>Do not call</source>
        <translation>请勿致电</translation>
    </message>
    <message>
        <source>Merge</source>
        <translation>合并</translation>
    </message>
    <message>
        <source>Import as new</source>
        <translation>作为新客户导入</translation>
    </message>
    <message>
        <source>Skip</source>
        <translation>跳过</translation>
    </message>
    <message>
        <source>Unexpected error: {0}</source>
        <translation>意外错误：{0}</translation>
    </message>
    <message>
        <source>Lines</source>
        <translation>行</translation>
    </message>
    <message>
        <source>Names in the file</source>
        <translation>文件中的姓名</translation>
    </message>
    <message>
        <source>Shared numbers</source>
        <translation>相同号码</translation>
    </message>
    <message>
        <source>Existing customer</source>
        <translation>已有客户</translation>
    </message>
    <message>
        <source>Action</source>
        <translation>操作</translation>
    </message>
    <message>
        <source>(only in this file)</source>
        <translation>（仅在此文件中）</translation>
    </message>
    <message>
        <source>Line</source>
        <translation>行号</translation>
    </message>
    <message>
        <source>Kind</source>
        <translation>类型</translation>
    </message>
    <message>
        <source>Reason</source>
        <translation>原因</translation>
    </message>
    <message>
        <source>Row</source>
        <translation>行内容</translation>
    </message>
    <message>
        <source>rejected</source>
        <translation>已拒绝</translation>
    </message>
    <message>
        <source>warning</source>
        <translation>警告</translation>
    </message>
</context>
<context>
    <name>IncomingCallBanner</name>
    <message>
        <source>Answer</source>
        <translation>接听</translation>
    </message>
    <message>
        <source>Reject</source>
        <translation>拒接</translation>
    </message>
    <message>
        <source>Incoming call: %1</source>
        <translation>来电：%1</translation>
    </message>
    <message>
        <source>Open customer</source>
        <translation>打开客户</translation>
    </message>
    <message>
        <source>New customer…</source>
        <translation>新建客户…</translation>
    </message>
</context>
<context>
    <name>Labels</name>
    <message>
        <source>New</source>
        <translation>新客户</translation>
    </message>
    <message>
        <source>Contacted</source>
        <translation>已联系</translation>
    </message>
    <message>
        <source>Call back</source>
        <translation>回电</translation>
    </message>
    <message>
        <source>Interested</source>
        <translation>有意向</translation>
    </message>
    <message>
        <source>Customer</source>
        <translation>客户</translation>
    </message>
    <message>
        <source>Not interested</source>
        <translation>无意向</translation>
    </message>
    <message>
        <source>Do not call</source>
        <translation>请勿致电</translation>
    </message>
    <message>
        <source>Lead</source>
        <translation>线索</translation>
    </message>
    <message>
        <source>Qualified</source>
        <translation>已确认</translation>
    </message>
    <message>
        <source>Proposal</source>
        <translation>方案</translation>
    </message>
    <message>
        <source>Negotiation</source>
        <translation>谈判</translation>
    </message>
    <message>
        <source>Won</source>
        <translation>成交</translation>
    </message>
    <message>
        <source>Lost</source>
        <translation>丢单</translation>
    </message>
    <message>
        <source>Mobile</source>
        <translation>手机</translation>
    </message>
    <message>
        <source>Work</source>
        <translation>工作</translation>
    </message>
    <message>
        <source>Home</source>
        <translation>住宅</translation>
    </message>
    <message>
        <source>Fax</source>
        <translation>传真</translation>
    </message>
    <message>
        <source>Other</source>
        <translation>其他</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Agent Desktop</source>
        <translation>坐席工作台</translation>
    </message>
    <message>
        <source>Customers</source>
        <translation>客户</translation>
    </message>
    <message>
        <source>Today</source>
        <translation>今天</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>&amp;New customer…</source>
        <translation>新建客户(&amp;N)…</translation>
    </message>
    <message>
        <source>&amp;Import…</source>
        <translation>导入(&amp;I)…</translation>
    </message>
    <message>
        <source>&amp;Export…</source>
        <translation>导出(&amp;E)…</translation>
    </message>
    <message>
        <source>&amp;Settings…</source>
        <translation>设置(&amp;S)…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;Customer</source>
        <translation>客户(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Edit customer…</source>
        <translation>编辑客户(&amp;E)…</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>Find customer (Ctrl+F)</source>
        <translation>查找客户 (Ctrl+F)</translation>
    </message>
    <message>
        <source>&amp;Customers</source>
        <translation>客户(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Today&apos;s follow-ups</source>
        <translation>今天的跟进(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <source>&amp;About Agent Desktop</source>
        <translation>关于坐席工作台(&amp;A)</translation>
    </message>
    <message>
        <source>1 match</source>
        <translation>1 条匹配</translation>
    </message>
    <message>
        <source>%1 matches</source>
        <translation>%1 条匹配</translation>
    </message>
    <message>
        <source>1 customer</source>
        <translation>1 位客户</translation>
    </message>
    <message>
        <source>%1 customers</source>
        <translation>%1 位客户</translation>
    </message>
    <message>
        <source>Today (%1)</source>
        <translation>今天 (%1)</translation>
    </message>
    <message>
        <source>Customer created</source>
        <translation>已创建客户</translation>
    </message>
    <message>
        <source>Select a customer first.</source>
        <translation>请先选择一位客户。</translation>
    </message>
    <message>
        <source>About Agent Desktop</source>
        <translation>关于坐席工作台</translation>
    </message>
    <message>
        <source>Agent Desktop — a softphone and customer workspace for telesales agents.</source>
        <translation>坐席工作台 — 面向电话销售坐席的软电话与客户工作区。</translation>
    </message>
    <message>
        <source>Unsaved changes</source>
        <translation>未保存的修改</translation>
    </message>
    <message>
        <source>The changes to this customer could not be saved. Fix them or press Revert, then close again.</source>
        <translation>此客户的修改无法保存。请修正或点击“还原”，然后再关闭。</translation>
    </message>
</context>
<context>
    <name>MigrationWindow</name>
    <message>
        <source>Agent Desktop</source>
        <translation>坐席工作台</translation>
    </message>
    <message>
        <source>Updating your database (one-time)…</source>
        <translation>正在升级您的数据库（仅此一次）…</translation>
    </message>
    <message>
        <source>This version of Agent Desktop stores your customers in a faster way. On a large database this takes a few minutes, once. Your data is kept safe meanwhile.</source>
        <translation>此版本的坐席工作台以更快的方式存储您的客户数据。数据库较大时，这需要几分钟，仅此一次。期间您的数据始终安全。</translation>
    </message>
    <message>
        <source>Preparing…</source>
        <translation>正在准备…</translation>
    </message>
    <message>
        <source>Step %1 of %2: %3</source>
        <translation>第 %1 步，共 %2 步：%3</translation>
    </message>
    <message>
        <source>Not enough free disk space for a copy of your data.</source>
        <translation>磁盘可用空间不足，无法备份您的数据。</translation>
    </message>
    <message>
        <source>Before the update, Agent Desktop keeps a copy of your data, and there is not enough free disk space for it: the copy needs %1 in %2, and only %3 is free.

You can quit, free up space and start Agent Desktop again (recommended), or update now without a copy.</source>
        <translation>升级前，坐席工作台会先备份您的数据，但磁盘可用空间不足：备份需要在 %2 中占用 %1，而可用空间只有 %3。

您可以退出，释放空间后重新打开坐席工作台（推荐），也可以不备份直接升级。</translation>
    </message>
    <message>
        <source>Not enough disk space</source>
        <translation>磁盘空间不足</translation>
    </message>
    <message>
        <source>Quit</source>
        <translation>退出</translation>
    </message>
    <message>
        <source>Update without a copy</source>
        <translation>不备份直接升级</translation>
    </message>
    <message>
        <source>Updating without a copy…</source>
        <translation>正在升级（未备份）…</translation>
    </message>
    <message>
        <source>Stop the update?</source>
        <translation>要停止升级吗？</translation>
    </message>
    <message>
        <source>Agent Desktop will close. Nothing is lost: the step in progress is undone and the update starts again the next time you open Agent Desktop.</source>
        <translation>坐席工作台将关闭。不会丢失任何数据：正在进行的步骤会被撤销，下次打开坐席工作台时升级会重新开始。</translation>
    </message>
    <message>
        <source>Stop and close</source>
        <translation>停止并关闭</translation>
    </message>
    <message>
        <source>Keep updating</source>
        <translation>继续升级</translation>
    </message>
    <message>
        <source>Stopping safely…</source>
        <translation>正在安全停止…</translation>
    </message>
    <message>
        <source>%1 elapsed</source>
        <translation>已用时 %1</translation>
    </message>
</context>
<context>
    <name>PendingWrapupsButton</name>
    <message numerus="yes">
        <source>%n wrap-up(s) pending</source>
        <translation>
            <numerusform>%n 个话后处理待完成</numerusform>
        </translation>
    </message>
    <message>
        <source>Open the oldest unfinished wrap-up</source>
        <translation>打开最早未完成的话后处理</translation>
    </message>
</context>
<context>
    <name>PhoneDialog</name>
    <message>
        <source>Phone number</source>
        <translation>电话号码</translation>
    </message>
    <message>
        <source>e.g. +86 138 0013 8000 or 010 6552 9988</source>
        <translation>例如 +86 138 0013 8000 或 010 6552 9988</translation>
    </message>
    <message>
        <source>Number</source>
        <translation>号码</translation>
    </message>
    <message>
        <source>Type</source>
        <translation>类型</translation>
    </message>
    <message>
        <source>Type the number as the customer gave it.</source>
        <translation>按客户提供的原样输入号码。</translation>
    </message>
    <message>
        <source>Will be dialled as %1</source>
        <translation>将拨打 %1</translation>
    </message>
    <message>
        <source>⚠ %1. It will be kept as typed and flagged.</source>
        <translation>⚠ %1。号码将按原样保存并加以标记。</translation>
    </message>
    <message>
        <source>Type a phone number.</source>
        <translation>请输入电话号码。</translation>
    </message>
</context>
<context>
    <name>ReminderPopup</name>
    <message>
        <source>Follow-ups due</source>
        <translation>到期的跟进</translation>
    </message>
    <message>
        <source>Follow-ups due now</source>
        <translation>现在到期的跟进</translation>
    </message>
    <message>
        <source>Dismiss</source>
        <translation>忽略</translation>
    </message>
    <message>
        <source>Call %1 — %2</source>
        <translation>致电 %1 — %2</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>General</source>
        <translation>常规</translation>
    </message>
    <message>
        <source>Server</source>
        <translation>服务器</translation>
    </message>
    <message>
        <source>Phone line</source>
        <translation>电话线路</translation>
    </message>
    <message>
        <source>Dial plan</source>
        <translation>拨号规则</translation>
    </message>
    <message>
        <source>Audio</source>
        <translation>音频</translation>
    </message>
    <message>
        <source>Recording</source>
        <translation>录音</translation>
    </message>
    <message>
        <source>Wrap-up</source>
        <translation>话后处理</translation>
    </message>
    <message>
        <source>Dialer</source>
        <translation>拨号器</translation>
    </message>
    <message>
        <source>Some changes (language, phone line) apply after a restart.</source>
        <translation>部分修改（语言、电话线路）需要重启后生效。</translation>
    </message>
    <message>
        <source>Not saved: %1</source>
        <translation>未保存：%1</translation>
    </message>
</context>
<context>
    <name>SettingsSchema</name>
    <message>
        <source>UI language</source>
        <translation>界面语言</translation>
    </message>
    <message>
        <source>Default country (ISO 3166 alpha-2) for phone numbers typed without +</source>
        <translation>未带 + 号输入的电话号码所属的默认国家（ISO 3166 两位代码）</translation>
    </message>
    <message>
        <source>Central server URL; empty = embedded server on loopback</source>
        <translation>中心服务器地址；留空 = 使用本机内置服务器</translation>
    </message>
    <message>
        <source>Sign-in name on the central server</source>
        <translation>中心服务器的登录名</translation>
    </message>
    <message>
        <source>Verify the server&apos;s TLS certificate</source>
        <translation>验证服务器的 TLS 证书</translation>
    </message>
    <message>
        <source>Extra CA bundle for the server (PEM)</source>
        <translation>服务器的附加 CA 证书包 (PEM)</translation>
    </message>
    <message>
        <source>Seconds between background sync rounds</source>
        <translation>后台同步间隔（秒）</translation>
    </message>
    <message>
        <source>SIP registrar/domain; empty = simulated customer line</source>
        <translation>SIP 注册服务器/域名；留空 = 模拟客户线路</translation>
    </message>
    <message>
        <source>SIP user name (the password lives in the keyring)</source>
        <translation>SIP 用户名（密码保存在密钥环中）</translation>
    </message>
    <message>
        <source>SIP transport</source>
        <translation>SIP 传输协议</translation>
    </message>
    <message>
        <source>CA file used to verify a TLS registrar</source>
        <translation>用于验证 TLS 注册服务器的 CA 文件</translation>
    </message>
    <message>
        <source>Local SIP port (0 = any free port)</source>
        <translation>本地 SIP 端口（0 = 任意空闲端口）</translation>
    </message>
    <message>
        <source>Codec priority, comma separated</source>
        <translation>编解码器优先级，用逗号分隔</translation>
    </message>
    <message>
        <source>Hang up a ringing outgoing call after this</source>
        <translation>呼出振铃超过此时间后挂断</translation>
    </message>
    <message>
        <source>End a connected call after this many seconds without audio from the other side</source>
        <translation>已接通的通话在对方无音频超过此秒数后结束</translation>
    </message>
    <message>
        <source>Name shown to the people you call</source>
        <translation>向被叫方显示的名称</translation>
    </message>
    <message>
        <source>Digits put before every dialled number</source>
        <translation>每个拨出号码前加拨的数字</translation>
    </message>
    <message>
        <source>Dial national format (drop +CC) for numbers in the default region</source>
        <translation>默认国家的号码按国内格式拨打（去掉 +国家代码）</translation>
    </message>
    <message>
        <source>Domain of the SIP URI; empty = registrar</source>
        <translation>SIP URI 的域名；留空 = 注册服务器</translation>
    </message>
    <message>
        <source>Microphone (empty = system default)</source>
        <translation>麦克风（留空 = 系统默认）</translation>
    </message>
    <message>
        <source>Headset/speaker (empty = system default)</source>
        <translation>耳机/扬声器（留空 = 系统默认）</translation>
    </message>
    <message>
        <source>Record every call automatically</source>
        <translation>自动录制每次通话</translation>
    </message>
    <message>
        <source>Play a consent notice before recording</source>
        <translation>录音前播放告知提示</translation>
    </message>
    <message>
        <source>Block dialling until the last call is wrapped up</source>
        <translation>完成上一通电话的话后处理前禁止拨号</translation>
    </message>
    <message>
        <source>Dispositions offered in wrap-up (hotkeys 1–9 in this order)</source>
        <translation>话后处理中的通话结果选项（按此顺序对应快捷键 1–9）</translation>
    </message>
    <message>
        <source>Local time window in which the power dialer may call a number</source>
        <translation>自动拨号器允许呼叫的当地时间段</translation>
    </message>
    <message>
        <source>Retry busy/no-answer numbers after N minutes</source>
        <translation>忙线/无人接听的号码在 N 分钟后重试</translation>
    </message>
    <message>
        <source>Maximum attempts per number in a call list</source>
        <translation>呼叫列表中每个号码的最多尝试次数</translation>
    </message>
    <message>
        <source>Preview mode: seconds the next customer is shown before the call</source>
        <translation>预览模式：呼叫前显示下一位客户的秒数</translation>
    </message>
</context>
<context>
    <name>SignInDialog</name>
    <message>
        <source>Sign in to the sync server</source>
        <translation>登录同步服务器</translation>
    </message>
    <message>
        <source>Server: %1</source>
        <translation>服务器：%1</translation>
    </message>
    <message>
        <source>Remember my password (stored in the system keyring)</source>
        <translation>记住密码（保存在系统密钥环中）</translation>
    </message>
    <message>
        <source>User name</source>
        <translation>用户名</translation>
    </message>
    <message>
        <source>Password</source>
        <translation>密码</translation>
    </message>
    <message>
        <source>Sign in</source>
        <translation>登录</translation>
    </message>
    <message>
        <source>Enter your user name.</source>
        <translation>请输入用户名。</translation>
    </message>
    <message>
        <source>Enter your password.</source>
        <translation>请输入密码。</translation>
    </message>
    <message>
        <source>Signing in…</source>
        <translation>正在登录…</translation>
    </message>
</context>
<context>
    <name>SoftphonePanel</name>
    <message>
        <source>No customer selected</source>
        <translation>未选择客户</translation>
    </message>
    <message>
        <source>Dial</source>
        <translation>拨号</translation>
    </message>
    <message>
        <source>Call the selected customer (Ctrl+D)</source>
        <translation>呼叫所选客户 (Ctrl+D)</translation>
    </message>
    <message>
        <source>Number or SIP address</source>
        <translation>号码或 SIP 地址</translation>
    </message>
    <message>
        <source>Call</source>
        <translation>呼叫</translation>
    </message>
    <message>
        <source>Idle</source>
        <translation>空闲</translation>
    </message>
    <message>
        <source>Hang up</source>
        <translation>挂断</translation>
    </message>
    <message>
        <source>End the call (Ctrl+E or Esc)</source>
        <translation>结束通话 (Ctrl+E 或 Esc)</translation>
    </message>
    <message>
        <source>Hold</source>
        <translation>保持</translation>
    </message>
    <message>
        <source>Mute</source>
        <translation>静音</translation>
    </message>
    <message>
        <source>Pause recording</source>
        <translation>暂停录音</translation>
    </message>
    <message>
        <source>Stop recording while the customer gives card details; the gap is marked</source>
        <translation>客户提供银行卡信息时暂停录音；暂停的片段会被标记</translation>
    </message>
    <message>
        <source>Keypad</source>
        <translation>拨号盘</translation>
    </message>
    <message>
        <source>Transfer</source>
        <translation>转接</translation>
    </message>
    <message>
        <source>Transfer to number or SIP address</source>
        <translation>转接到号码或 SIP 地址</translation>
    </message>
    <message>
        <source>Transfer now</source>
        <translation>立即转接</translation>
    </message>
    <message>
        <source>Customer not found</source>
        <translation>未找到客户</translation>
    </message>
    <message>
        <source>%1 — no phone number</source>
        <translation>%1 — 没有电话号码</translation>
    </message>
    <message>
        <source>Select a customer with a phone number first.</source>
        <translation>请先选择有电话号码的客户。</translation>
    </message>
    <message>
        <source>This customer has no phone number.</source>
        <translation>此客户没有电话号码。</translation>
    </message>
    <message>
        <source>Type a number to call.</source>
        <translation>请输入要呼叫的号码。</translation>
    </message>
    <message>
        <source>Hang up the current call first.</source>
        <translation>请先挂断当前通话。</translation>
    </message>
    <message>
        <source>Connecting…</source>
        <translation>正在连接…</translation>
    </message>
    <message>
        <source>Type the number to transfer to.</source>
        <translation>请输入要转接的号码。</translation>
    </message>
    <message>
        <source>Transferring to %1…</source>
        <translation>正在转接到 %1…</translation>
    </message>
    <message>
        <source>Resume recording</source>
        <translation>恢复录音</translation>
    </message>
    <message>
        <source>Calling…</source>
        <translation>正在呼叫…</translation>
    </message>
    <message>
        <source>Ringing…</source>
        <translation>正在振铃…</translation>
    </message>
    <message>
        <source>Connected</source>
        <translation>已接通</translation>
    </message>
    <message>
        <source>Missed call from %1</source>
        <translation>来自 %1 的未接来电</translation>
    </message>
    <message>
        <source>Call ended: %1</source>
        <translation>通话结束：%1</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>恢复</translation>
    </message>
    <message>
        <source>On hold</source>
        <translation>保持中</translation>
    </message>
    <message>
        <source>Unmute</source>
        <translation>取消静音</translation>
    </message>
    <message>
        <source>%1 · jitter %2 ms · loss %3 %</source>
        <translation>%1 · 抖动 %2 毫秒 · 丢包 %3 %</translation>
    </message>
</context>
<context>
    <name>StoreUpgrade</name>
    <message>
        <source>Your database could not be updated to this version of Agent Desktop (%1). It was left as it was; details are in the log.</source>
        <translation>无法将您的数据库升级到此版本的坐席工作台（%1）。数据库保持原样，详情见日志。</translation>
    </message>
    <message>
        <source>Keeping a copy of your data</source>
        <translation>正在备份您的数据</translation>
    </message>
    <message>
        <source>Updating: %1</source>
        <translation>正在升级：%1</translation>
    </message>
    <message>
        <source>Rebuilding the search index (an earlier download was interrupted)</source>
        <translation>正在重建搜索索引（上次下载被中断）</translation>
    </message>
</context>
<context>
    <name>SyncStatusWidget</name>
    <message>
        <source>First download %p%</source>
        <translation>首次下载 %p%</translation>
    </message>
    <message numerus="yes">
        <source>%n conflict(s)</source>
        <translation>
            <numerusform>%n 个冲突</numerusform>
        </translation>
    </message>
    <message>
        <source>Online</source>
        <translation>在线</translation>
    </message>
    <message>
        <source>Offline</source>
        <translation>离线</translation>
    </message>
    <message>
        <source>Syncing…</source>
        <translation>正在同步…</translation>
    </message>
    <message>
        <source>Not signed in</source>
        <translation>未登录</translation>
    </message>
    <message>
        <source>Sync problem</source>
        <translation>同步出错</translation>
    </message>
    <message>
        <source>last synced %1</source>
        <translation>上次同步 %1</translation>
    </message>
    <message>
        <source>Sign in…</source>
        <translation>登录…</translation>
    </message>
    <message>
        <source>Sync now</source>
        <translation>立即同步</translation>
    </message>
</context>
<context>
    <name>TagChip</name>
    <message>
        <source>Remove tag “%1”</source>
        <translation>删除标签“%1”</translation>
    </message>
</context>
<context>
    <name>TagEditor</name>
    <message>
        <source>No tags yet — type one below and press Enter.</source>
        <translation>还没有标签 — 在下方输入后按回车。</translation>
    </message>
    <message>
        <source>Add a tag…</source>
        <translation>添加标签…</translation>
    </message>
    <message>
        <source>Add</source>
        <translation>添加</translation>
    </message>
</context>
<context>
    <name>TodayModel</name>
    <message>
        <source>Due</source>
        <translation>到期</translation>
    </message>
    <message>
        <source>Customer</source>
        <translation>客户</translation>
    </message>
    <message>
        <source>Follow-up</source>
        <translation>跟进事项</translation>
    </message>
    <message>
        <source>Overdue</source>
        <translation>已逾期</translation>
    </message>
</context>
<context>
    <name>TodayView</name>
    <message>
        <source>Follow-ups due today</source>
        <translation>今天到期的跟进</translation>
    </message>
    <message>
        <source>Nothing due today.
Schedule a follow-up in a customer&apos;s detail pane and it shows up here on its day.</source>
        <translation>今天没有到期的跟进。
在客户详情中安排跟进，到期当天会显示在这里。</translation>
    </message>
</context>
<context>
    <name>WrapupDialog</name>
    <message>
        <source>Wrap-up</source>
        <translation>话后处理</translation>
    </message>
    <message>
        <source>Disposition</source>
        <translation>通话结果</translation>
    </message>
    <message>
        <source>Tags, separated by commas</source>
        <translation>标签，用逗号分隔</translation>
    </message>
    <message>
        <source>Notes (Shift+Enter for a new line)</source>
        <translation>备注（Shift+回车换行）</translation>
    </message>
    <message>
        <source>&amp;Follow up</source>
        <translation>跟进(&amp;F)</translation>
    </message>
    <message>
        <source>What to follow up on (optional)</source>
        <translation>跟进事项（可选）</translation>
    </message>
    <message>
        <source>Do &amp;not call this customer again</source>
        <translation>不再致电此客户(&amp;N)</translation>
    </message>
    <message>
        <source>&amp;Save</source>
        <translation>保存(&amp;S)</translation>
    </message>
    <message>
        <source>Finish &amp;later</source>
        <translation>稍后完成(&amp;L)</translation>
    </message>
    <message>
        <source>&amp;Tags</source>
        <translation>标签(&amp;T)</translation>
    </message>
    <message>
        <source>N&amp;otes</source>
        <translation>备注(&amp;O)</translation>
    </message>
    <message>
        <source>Stat&amp;us</source>
        <translation>状态(&amp;U)</translation>
    </message>
    <message>
        <source>Sta&amp;ge</source>
        <translation>阶段(&amp;G)</translation>
    </message>
    <message>
        <source>&amp;Disposition (1–9)</source>
        <translation>通话结果(&amp;D) (1–9)</translation>
    </message>
    <message>
        <source>The disk is full, so the draft could not be kept; free some space and keep this window open.</source>
        <translation>磁盘已满，草稿无法保存；请释放一些空间，并保持此窗口打开。</translation>
    </message>
    <message>
        <source>The draft could not be written to disk; keep this window open and try Save again.</source>
        <translation>草稿无法写入磁盘；请保持此窗口打开并再次点击保存。</translation>
    </message>
    <message>
        <source>The wrap-up could not be saved because the disk is full. Nothing was lost: free some space, keep this window open and press Enter again.</source>
        <translation>磁盘已满，通话小结无法保存。没有丢失任何内容：请释放一些空间，保持此窗口打开，然后再按 Enter。</translation>
    </message>
    <message>
        <source>The wrap-up could not be saved (the database refused the write; details are in the log). Nothing was lost: keep this window open and press Enter again.</source>
        <translation>话后处理无法保存（数据库拒绝写入，详情见日志）。没有丢失任何内容：请保持此窗口打开并再次按回车。</translation>
    </message>
    <message>
        <source>This customer was deleted on the server. The call&apos;s disposition and notes will still be saved on the call log.</source>
        <translation>此客户已在服务器上被删除。本次通话的结果和备注仍会保存在通话记录中。</translation>
    </message>
    <message>
        <source>Unknown caller</source>
        <translation>未知来电</translation>
    </message>
    <message>
        <source>%1 · %2 · talked %3</source>
        <translation>%1 · %2 · 通话 %3</translation>
    </message>
    <message numerus="yes">
        <source>%n more waiting</source>
        <translation>
            <numerusform>还有 %n 个等待处理</numerusform>
        </translation>
    </message>
    <message>
        <source>Wrap-up: %1</source>
        <translation>话后处理：%1</translation>
    </message>
</context>
</TS>
