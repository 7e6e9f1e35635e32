//! Job commands. The jobs window itself is part 2; the chat window shows the pool's state.

use gatehouse_engine::PoolStatus;
use tauri::State;

use crate::error::Result;
use crate::state::Core;

#[tauri::command]
pub async fn pool_status(core: State<'_, Core>) -> Result<PoolStatus> {
    Ok(core.engine.pool_status().await?)
}
